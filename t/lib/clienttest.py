"""clienttest - what the tests that drive real mail clients share (t/51
POP3, t/58 IMAP): ending a client with whatever it started, and telling
a message a client stored from the one the server had when the client
only added header fields to it."""
import os
import signal

import posthorn


def kill_tree(p):
    """Kill a client and whatever it started (fetchmail's MDA), by PID."""
    for pid in [p.pid] + posthorn.children_of(p.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def split_message(data):
    """(header fields with their continuation lines, body) of LF text."""
    head, sep, body = data.partition(b"\n\n")
    fields = []
    for line in (head + b"\n").splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, body


def added_fields(copy, orig):
    """The header fields copy has on top of orig's, if copy is orig (same
    body, orig's fields in order) with fields added; None if it is not."""
    cf, cb = split_message(copy)
    of, ob = split_message(orig)
    if cb != ob:
        return None
    extra, j = [], 0
    for f in cf:
        if j < len(of) and f == of[j]:
            j += 1
        else:
            extra.append(f)
    return extra if j == len(of) else None
