-- data-api POST /logs: one small JSON record per request (about the size of a legacy message),
-- then the shared RESULT line. BENCH_WRK_DIR is set by bench/bench.py.
wrk.method = "POST"
wrk.body = '{"message":"Processing request... bench","level":"info"}'
wrk.headers["Content-Type"] = "application/json"
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")
