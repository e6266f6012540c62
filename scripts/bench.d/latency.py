"""Change latency in `writeback run` mode, for scripts/bench: a steady stream of Set-Mailbox
calls against the emulator, and the time until each value is readable in AD."""

import base64
import random
import re
import statistics
import threading
import time

from infra import BenchError, log


def pick_users(ldap, ou):
    """[(sAMAccountName, userPrincipalName)] of the OU's users, read once (untimed): the
    stream addresses mailboxes by UPN and the poller finds them by sAMAccountName (indexed)."""
    out = ldap.search_text_paged(ou, "(&(objectCategory=person)(objectClass=user))",
                                 ["sAMAccountName", "userPrincipalName"])
    users, sam, upn = [], None, None
    for line in out.splitlines() + [""]:
        if not line:
            if sam and upn:
                users.append((sam, upn))
            sam = upn = None
        elif line.startswith("sAMAccountName: "):
            sam = line.split(": ", 1)[1]
        elif line.startswith("userPrincipalName: "):
            upn = line.split(": ", 1)[1]
    return users


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100 * (len(sorted_values) - 1)))))
    return sorted_values[index]


def measure(emulator, ldap, ou, users, rate, seconds, poll_interval=0.15, drain_seconds=60, seed=5):
    """Streams rate*seconds Set-Mailbox calls (CustomAttribute10 = a unique value, a random
    mailbox with no change still pending) and polls AD every `poll_interval` s for the pending
    ones only, by one indexed filter per tick. Returns a dict of figures."""
    if not users:
        raise BenchError("no users to change")
    rng = random.Random(seed)
    pending = {}  # sAMAccountName -> (value, t0)
    latencies, errors = [], []
    lock = threading.Lock()
    done = threading.Event()
    polls = [0]

    def poller():
        try:
            while True:
                tick = time.monotonic()
                with lock:
                    wanted = list(pending)
                if not wanted:
                    if done.is_set():
                        return
                else:
                    filt = "(|" + "".join(f"(sAMAccountName={s})" for s in wanted) + ")"
                    text = ldap.search_text(ou, filt, ["sAMAccountName", "extensionAttribute10"])
                    now = time.monotonic()
                    polls[0] += 1
                    seen = _values_by_sam(text)
                    with lock:
                        for sam, value in seen.items():
                            entry = pending.get(sam)
                            if entry and entry[0] == value:
                                latencies.append(now - entry[1])
                                del pending[sam]
                    if done.is_set() and time.monotonic() - done_at[0] > drain_seconds:
                        return
                time.sleep(max(0.0, poll_interval - (time.monotonic() - tick)))
        except Exception as e:  # reported by the main thread
            errors.append(e)

    done_at = [float("inf")]
    conn = emulator.connect()
    token = emulator.token(conn)
    stats_before = emulator.control("GET", "/_emulator/stats")
    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    total = int(rate * seconds)
    call_times = []
    start = time.monotonic()
    run_tag = time.time_ns()
    finished = False
    try:
        for i in range(total):
            if errors:
                break
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            with lock:
                busy = set(pending)
            sam, upn = rng.choice(users)
            for _ in range(20):
                if sam not in busy:
                    break
                sam, upn = rng.choice(users)
            value = f"lat-{run_tag}-{i}"
            t0 = time.monotonic()
            with lock:
                pending[sam] = (value, t0)
            emulator.cmdlet(conn, token, "Set-Mailbox", {"Identity": upn, "CustomAttribute10": value})
            call_times.append(time.monotonic() - t0)
        window = time.monotonic() - start
        stats_after = emulator.control("GET", "/_emulator/stats")
        finished = True
    finally:
        # On a failure the poller stops at once instead of draining.
        done_at[0] = time.monotonic() if finished else -float("inf")
        done.set()
        thread.join()
        conn.close()
    if errors:
        raise BenchError(f"latency poller failed: {errors[0]}")
    lat = sorted(latencies)
    sent = len(call_times)
    figures = {
        "changes": sent, "rate_requested": rate, "rate_achieved": round(sent / window, 2) if window else None,
        "window_s": round(window, 1), "poll_interval_s": poll_interval, "ad_polls": polls[0],
        "p50_s": _r(percentile(lat, 50)), "p95_s": _r(percentile(lat, 95)), "p99_s": _r(percentile(lat, 99)),
        "max_s": _r(lat[-1] if lat else None), "mean_s": _r(statistics.mean(lat) if lat else None),
        "lost": len(pending), "seen": len(lat),
        "set_mailbox_call_mean_ms": round(1000 * statistics.mean(call_times), 1) if call_times else None,
    }
    figures["writeback_requests_per_min"] = _request_rates(stats_before, stats_after, sent, window,
                                                           emulator.invoke_path())
    return figures


def _r(x):
    return None if x is None else round(x, 3)


_ENTRY = re.compile(r"^(sAMAccountName|extensionAttribute10):(:?) (.*)$", re.IGNORECASE)


def _values_by_sam(text):
    """{sAMAccountName: extensionAttribute10} from -LLL output (the values are ASCII)."""
    out, sam, value = {}, None, None
    for line in text.splitlines() + [""]:
        if not line:
            if sam is not None and value is not None:
                out[sam] = value
            sam = value = None
            continue
        m = _ENTRY.match(line)
        if not m:
            continue
        v = m.group(3)
        if m.group(2):
            v = base64.b64decode(v).decode("utf-8", errors="replace")
        if m.group(1).lower() == "samaccountname":
            sam = v
        else:
            value = v
    return out


def _request_rates(before, after, own_set_mailbox, window, invoke_path):
    """Requests per minute writeback made in the window, per path and per cmdlet: the
    emulator's counters' difference, less our own Set-Mailbox calls."""
    minutes = window / 60 if window > 0 else 1

    def diff(key):
        a, b = before.get(key) or {}, after.get(key) or {}
        return {k: b.get(k, 0) - a.get(k, 0) for k in b if b.get(k, 0) - a.get(k, 0) > 0}

    by_path, by_cmdlet = diff("by_path"), diff("by_cmdlet")
    if invoke_path in by_path:
        by_path[invoke_path] -= own_set_mailbox
    if "Set-Mailbox" in by_cmdlet:
        by_cmdlet["Set-Mailbox"] -= own_set_mailbox
    total = after.get("total", 0) - before.get("total", 0) - own_set_mailbox
    tokens = after.get("tokens_issued", 0) - before.get("tokens_issued", 0)
    return {
        "total": round(total / minutes, 1),
        "by_path": {k: round(v / minutes, 1) for k, v in by_path.items() if v > 0},
        "by_cmdlet": {k: round(v / minutes, 1) for k, v in by_cmdlet.items() if v > 0},
        "tokens_issued": tokens,
    }


def report_line(f):
    def s(x):
        return "-" if x is None else f"{x:.2f} s"
    log(f"latency  {f['changes']} changes at {f['rate_achieved']}/s over {f['window_s']} s: p50 {s(f['p50_s'])}, "
        f"p95 {s(f['p95_s'])}, p99 {s(f['p99_s'])}, max {s(f['max_s'])}, mean {s(f['mean_s'])}; "
        f"lost {f['lost']} of {f['changes']}")
    rates = f["writeback_requests_per_min"]
    parts = ", ".join(f"{k} {v}" for k, v in sorted({**rates["by_path"], **rates["by_cmdlet"]}.items()))
    log(f"latency  writeback's requests to the emulator: {rates['total']}/min ({parts})")
