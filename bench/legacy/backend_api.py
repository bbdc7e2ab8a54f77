"""The legacy backend service, as it behaved before the Rust rewrite: the benchmark's baseline.

GET /api_1 picks one outcome at random, logs it, works for 0.5 s and answers
"completed: <outcome>"; GET /health_check answers "healthy". Flask's default responses
(text/html) and gunicorn's sync workers (one request at a time, Connection: close), as the
legacy containers ran them.
"""
import os
import random
import time

from flask import Flask

app = Flask(__name__)

OUTCOMES = ("Success", "Created", "Failed")
# Not in the legacy code: lets the benchmark scale the simulated work (1.0 = the legacy 0.5 s).
DELAY_SCALE = float(os.environ.get("SIMULATED_DELAY_SCALE", "1.0"))


@app.route("/api_1")
def api_1():
    outcome = random.choice(OUTCOMES)
    print(f"Operation log: {outcome}")
    time.sleep(0.5 * DELAY_SCALE)
    return f"completed: {outcome}"


@app.route("/health_check")
def health_check():
    return "healthy"
