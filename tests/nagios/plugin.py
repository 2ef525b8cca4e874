#!/usr/bin/env python3
"""Reads Nagios plugin output on stdin the way Nagios core and the monitoring plugins'
development guidelines define it, independently of dbtool's renderer, and prints it as JSON:
{"status": first line's text, "long": [long text lines], "perf": [{label, value, uom, warn,
crit, min, max}]}. Exits 1 with a message on anything outside the grammar.

Guidelines (monitoring-plugins.org/doc/guidelines.html, "Plugin Output" and "Performance data"):
- the first line is TEXT [| PERFDATA]; further lines are long text until the first '|',
  after which that line's rest and every following line are perfdata;
- perfdata is space-separated 'label'=value[UOM];[warn];[crit];[min];[max];
- a label may be quoted with single quotes (required for spaces, '=' and quotes), a quote
  inside written as two quotes;
- value, min and max are [-0-9.]; UOM is one of (none), s, ms, us, %, B, KB, MB, TB, c;
- warn and crit are ranges: [@][start:][end], start may be ~; trailing empty fields may go.
"""
import json
import re
import sys

UOMS = {"", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"}
NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
VALUE = re.compile(r"(" + NUMBER + r")([A-Za-z%]*)$")
RANGE = re.compile(r"@?(?:(~|" + NUMBER + r"):)?(" + NUMBER + r")?$")


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def split_output(text):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        fail("no output")
    status, _, perf = lines[0].partition("|")
    perf_text = [perf] if perf else []
    long_text = []
    in_perf = False
    for line in lines[1:]:
        if in_perf:
            perf_text.append(line)
        elif "|" in line:
            before, _, after = line.partition("|")
            if before:
                long_text.append(before)
            perf_text.append(after)
            in_perf = True
        else:
            long_text.append(line)
    return status.rstrip(" "), long_text, " ".join(perf_text)


def parse_perfdata(text):
    items = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] == " ":
            i += 1
        if i >= n:
            return items
        if text[i] == "'":
            i += 1
            label = []
            while True:
                if i >= n:
                    fail("unterminated quoted label in: " + text)
                if text[i] == "'":
                    if i + 1 < n and text[i + 1] == "'":
                        label.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                label.append(text[i])
                i += 1
            label = "".join(label)
        else:
            j = text.find("=", i)
            if j < 0:
                fail("perfdata item without '=' at: " + text[i:])
            label = text[i:j]
            if " " in label or "'" in label:
                fail("unquoted label with a space or quote: " + label)
            i = j
        if i >= n or text[i] != "=":
            fail("label %r not followed by '='" % label)
        i += 1
        j = text.find(" ", i)
        j = n if j < 0 else j
        fields = text[i:j].split(";")
        i = j
        if len(fields) > 5:
            fail("more than five fields for %r" % label)
        fields += [""] * (5 - len(fields))
        m = VALUE.match(fields[0])
        if not m or m.group(2) not in UOMS:
            fail("bad value/UOM %r for %r" % (fields[0], label))
        for name, f in (("warn", fields[1]), ("crit", fields[2])):
            if f and not RANGE.match(f):
                fail("bad %s range %r for %r" % (name, f, label))
        for name, f in (("min", fields[3]), ("max", fields[4])):
            if f and not re.match(NUMBER + "$", f):
                fail("bad %s %r for %r" % (name, f, label))
        items.append({
            "label": label, "value": float(m.group(1)), "uom": m.group(2),
            "warn": fields[1], "crit": fields[2], "min": fields[3], "max": fields[4],
        })


def main():
    status, long_text, perf = split_output(sys.stdin.read())
    m = re.match(r"POSTGRES (OK|WARNING|CRITICAL|UNKNOWN) - ", status)
    if not m:
        fail("status line is not 'POSTGRES <STATUS> - ...': " + status)
    json.dump({"status": status, "state": m.group(1), "long": long_text,
               "perf": parse_perfdata(perf)}, sys.stdout)


main()
