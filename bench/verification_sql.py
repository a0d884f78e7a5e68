"""Prints the statements of Verification methods as the server runs them,
for bench/verification.sh: src/services/verification.c is run through the
C preprocessor with its own compile command (compile_commands.json of a
build), and the string literals of each named method's .stmts are joined.

    verification_sql.py BUILD_DIR METHOD...

Output: JSON {"Method": [{"sql": "...", "params": ["result.request_id", ...]}, ...]}.
"""
import json
import os
import re
import shlex
import subprocess
import sys

TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|\S')


def preprocessed(build):
    with open(os.path.join(build, "compile_commands.json")) as f:
        entry = next(e for e in json.load(f) if e["file"].endswith("services/verification.c"))
    argv = shlex.split(entry["command"])
    out = []
    skip = False
    for a in argv:  # drop -c, -o FILE, the dependency-file flags
        if skip:
            skip = False
        elif a in ("-o", "-MF", "-MQ", "-MT"):
            skip = True
        elif a not in ("-c", "-MD"):
            out.append(a)
    return subprocess.run(out + ["-E", "-P"], cwd=entry["directory"], check=True,
                          capture_output=True, text=True).stdout


def unquote(lit):
    return bytes(lit[1:-1], "utf-8").decode("unicode_escape")


def literals(tokens, i):
    """Adjacent string literals from tokens[i]: (text, next index)."""
    s = ""
    while i < len(tokens) and tokens[i].startswith('"'):
        s += unquote(tokens[i])
        i += 1
    return s, i


def static_strings(tokens):
    """static const char NAME[] = "..." "...";"""
    out = {}
    for i in range(len(tokens) - 6):
        if tokens[i:i + 3] == ["static", "const", "char"] and tokens[i + 4:i + 7] == ["[", "]",
                                                                                    "="]:
            out[tokens[i + 3]], _ = literals(tokens, i + 7)
    return out


def statements(tokens, i, names):
    """The .stmts = {{sql, params}, ...} starting after tokens[i] == 'stmts'."""
    assert tokens[i + 1:i + 4] == ["=", "{", "{"], tokens[i:i + 5]
    i += 3
    stmts = []
    while tokens[i] == "{":
        i += 1
        if tokens[i].startswith('"'):
            sql, i = literals(tokens, i)
        else:
            sql, i = names[tokens[i]], i + 1
        params = []
        depth = 0
        while not (depth == 0 and tokens[i] == "}"):
            depth += tokens[i] in "({"
            depth -= tokens[i] in ")}"
            if tokens[i].startswith('"'):
                params.append(unquote(tokens[i]))
            i += 1
        stmts.append({"sql": sql, "params": params})
        i += 1
        if tokens[i] == ",":
            i += 1
    return stmts


def main():
    tokens = TOKEN.findall(preprocessed(sys.argv[1]))
    names = static_strings(tokens)
    found = {}
    for i, t in enumerate(tokens):
        if t == "name" and tokens[i + 1] == "=" and unquote(tokens[i + 2]) in sys.argv[2:]:
            j = tokens.index("stmts", i)
            found[unquote(tokens[i + 2])] = statements(tokens, j, names)
    missing = set(sys.argv[2:]) - set(found)
    if missing:
        sys.exit("verification_sql.py: no statements for %s" % ", ".join(sorted(missing)))
    json.dump(found, sys.stdout)


if __name__ == "__main__":
    main()
