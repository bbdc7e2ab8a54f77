-- POST /logs with a JSON record; the RESULT line comes from report.lua.
dofile(os.getenv("REPORT_LUA"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"message":"benchmark record: something happened","level":"info"}'
