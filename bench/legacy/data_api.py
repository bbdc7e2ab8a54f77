"""The legacy data service, as it behaved before the Rust rewrite: the benchmark's baseline.

GET / works for 3 s, picks a message at random, logs it, writes it to a new file
LOG_DIR/log_<time>.txt (one file per request, never synced) and answers "Log: <message>".
"""
import os
import random
import time

from flask import Flask

app = Flask(__name__)

MESSAGES = ("Processing request...", "Executing task...", "Preparing data...", "Performing operation...")
LOG_DIR = os.environ.get("LOG_DIR", "/var/data/logs")
# Not in the legacy code: lets the benchmark scale the simulated work (0 = the write path alone).
DELAY_SCALE = float(os.environ.get("SIMULATED_DELAY_SCALE", "1.0"))


@app.route("/")
def log_request():
    time.sleep(3 * DELAY_SCALE)
    message = random.choice(MESSAGES)
    print(f"Log: {message}")
    os.makedirs(LOG_DIR, exist_ok=True)
    with open(os.path.join(LOG_DIR, f"log_{time.time()}.txt"), "a") as f:
        f.write(message + "\n")
    return f"Log: {message}"
