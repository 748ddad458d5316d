"""tap.py - minimal TAP output for Posthorn's Python integration tests.

ok(cond, name), is_(got, want, name), like(text, substring, name), diag(text),
skip_all(reason), done() (prints the plan; exit status 1 if anything failed).
Output is flushed after every line so a crash never hides results.
"""
import sys

_count = 0
_failed = 0


def diag(text):
    for line in str(text).splitlines() or [""]:
        print("# " + line, flush=True)


def ok(cond, name):
    global _count, _failed
    _count += 1
    if not cond:
        _failed += 1
    print("%sok %d - %s" % ("" if cond else "not ", _count, name), flush=True)
    return bool(cond)


def is_(got, want, name):
    if not ok(got == want, name):
        diag("  got:  %r\n  want: %r" % (got, want))
        return False
    return True


def like(text, sub, name):
    if not ok(text is not None and sub in text, name):
        diag("  %r\n  does not contain %r" % (text, sub))
        return False
    return True


def unlike(text, sub, name):
    if not ok(text is not None and sub not in text, name):
        diag("  %r\n  contains %r" % (text, sub))
        return False
    return True


def skip_all(reason):
    print("1..0 # SKIP %s" % reason, flush=True)
    sys.exit(0)


def done():
    print("1..%d" % _count, flush=True)
    sys.exit(1 if _failed else 0)
