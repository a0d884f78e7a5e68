#!/usr/bin/python3
"""Prints the SQL of the Knowledge method table (src/services/knowledge.c)
exactly as the server sends it, so that pgbench and EXPLAIN run the very
statements the server runs rather than copies that could drift.

    bench/knowledge_sql.py NAME      the statement NAME (e.g. get_cached_sql)
    bench/knowledge_sql.py --list    every statement, "NAME<TAB>SQL" a line

The file's own macros are expanded with the C preprocessor (its #include
lines are dropped, so no build is needed); adjacent string literals are
then joined and unescaped as a C compiler does.
"""
import os
import re
import subprocess
import sys

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "services",
                      "knowledge.c")
LITERAL = r'"((?:[^"\\]|\\.)*)"'


def statements(path=SOURCE):
    with open(path) as f:
        text = "".join(line for line in f if not line.startswith("#include"))
    out = subprocess.run(["cpp", "-P", "-w"], input=text, capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for m in re.finditer(r"static const char (\w+)\[\] =((?:\s*" + LITERAL + r")+);", out):
        parts = re.findall(LITERAL, m.group(2))
        found[m.group(1)] = "".join(p.encode().decode("unicode_escape") for p in parts)
    return found


def main(argv):
    sql = statements()
    if len(argv) == 2 and argv[1] == "--list":
        for name, text in sql.items():
            print("%s\t%s" % (name, text))
        return 0
    if len(argv) != 2 or argv[1] not in sql:
        print("usage: knowledge_sql.py NAME | --list; names: %s" % " ".join(sql),
              file=sys.stderr)
        return 2
    print(sql[argv[1]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
