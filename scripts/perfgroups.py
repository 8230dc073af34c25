"""Groups `perf report --sort dso,sym` samples by what they are in (kernel,
clock, allocator, copies, hyper, tokio, the program's own code, other) and
scales them to µs per event with the load generator's figure. Used by
scripts/profile.sh and scripts/profile-proxy.sh.

Inlined code counts in the function it was inlined into, so the groups are
approximate at their edges."""

import json
import re


def groups(own_label, is_own_dso):
    """The groups, in the order a sample is tested against them (first match
    wins). `is_own_dso(dso)` says which other binary counts as own code
    besides sluice's symbols."""
    return [
        ("kernel", lambda dso, sym: dso == "[kernel.kallsyms]"),
        ("clock", lambda dso, sym: "clock_gettime" in sym or dso == "[vdso]"),
        ("allocator", lambda dso, sym: sym.startswith(("_rjem", "do_rallocx", "malloc", "free", "realloc", "cfree", "_int_"))
            or "alloc::raw_vec" in sym),
        ("copies", lambda dso, sym: "memmove" in sym or "memcpy" in sym or "memset" in sym),
        ("hyper", lambda dso, sym: re.search(r"\b(hyper|hyper_util|http|h2|httparse)::", sym) is not None),
        ("tokio, futures, mio", lambda dso, sym: re.search(r"\b(tokio|futures_\w+|mio)::", sym) is not None),
        (own_label, lambda dso, sym: "sluice::" in sym or is_own_dso(dso)),
        ("other (libc, std, bytes, memchr, serde_json, ...)", lambda dso, sym: True),
    ]


def load(report_path, loadgen_json_path, group_list):
    """Reads one target's perf report and loadgen JSON. Returns µs per event
    by group, µs per event in all, the samples as (share %, dso, symbol), the
    kernel's µs per event by symbol, and the loadgen JSON."""
    per = {name: 0.0 for name, _ in group_list}
    top = []
    for line in open(report_path):
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if not m:
            continue
        share, dso, sym = float(m[1]), m[2], m[3].strip()
        for name, test in group_list:
            if test(dso, sym):
                per[name] += share
                break
        top.append((share, dso, sym))
    data = json.load(open(loadgen_json_path))
    us_per_event = data["target"]["cpu_percent_per_1k_events_per_s"] * 10
    total = sum(per.values()) or 1
    kernel = {sym: share / total * us_per_event for share, dso, sym in top if dso == "[kernel.kallsyms]"}
    return {name: s / total * us_per_event for name, s in per.items()}, us_per_event, top, kernel, data
