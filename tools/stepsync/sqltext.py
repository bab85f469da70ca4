"""Reading the SQL files stepsync ships (db/functions/*.sql), for `stepsync doctor`.

A small lexer and parser, not a general SQL parser: `split_statements` cuts a file into
statements (comments, string literals, quoted names and dollar quotes respected),
`strip_comments` drops comments, and `packaged` reads every CREATE FUNCTION / PROCEDURE,
CREATE TRIGGER and CREATE VIEW with the COMMENT ON, REVOKE and GRANT lines that follow
it into PackagedFunction, PackagedTrigger and PackagedView: what doctor's read-only
definitions check compares with the catalog (commands/doctor.py), so that it needs no
write and no lock. It reads the files as db/functions/ writes them (one object a file
with its COMMENT ON and grants, `stepsync.` or no schema, dollar-quoted bodies);
`normalize_expression` is the text comparison doctor falls back to when the server
cannot plan an expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


def split_statements(text: str) -> list[str]:
    """The statements of a SQL file (comments kept inside, trailing semicolons dropped)."""
    statements, start, i, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "'":
            j = i + 1
            while j < n:
                if text[j] == "'" and text.startswith("''", j):
                    j += 2
                elif text[j] == "'":
                    break
                else:
                    j += 1
            i = j + 1
        elif c == '"':
            j = text.find('"', i + 1)
            i = n if j < 0 else j + 1
        elif c == "$" and (m := re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:])):
            tag = m.group(0)
            j = text.find(tag, i + len(tag))
            i = n if j < 0 else j + len(tag)
        elif c == ";":
            statements.append(text[start:i])
            start = i = i + 1
        else:
            i += 1
    statements.append(text[start:])
    return [s for s in (strip_comments(s).strip() and s.strip() for s in statements) if s]


def strip_comments(sql: str) -> str:
    """SQL with -- and /* */ comments removed (outside string literals and dollar quotes)."""
    out, i, n = [], 0, len(sql)
    while i < n:
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif sql[i] == "'":
            j = i + 1
            while j < n and not (sql[j] == "'" and not sql.startswith("''", j)):
                j += 2 if sql.startswith("''", j) else 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif sql[i] == "$" and (m := re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", sql[i:])):
            tag = m.group(0)
            j = sql.find(tag, i + len(tag))
            j = n if j < 0 else j + len(tag)
            out.append(sql[i:j])
            i = j
        else:
            out.append(sql[i])
            i += 1
    return "".join(out)


def string_literal(sql: str) -> str | None:
    """The value of the SQL string literal(s) SQL ends with ('a''b' -> a'b; adjacent literals on new lines join)."""
    parts = re.findall(r"'((?:[^']|'')*)'", sql)
    if not parts:
        return None
    return "".join(p.replace("''", "'") for p in parts)


def split_top(text: str, sep: str = ",") -> list[str]:
    """TEXT split at SEP outside parentheses and quotes."""
    parts, depth, start, quote = [], 0, 0, None
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _matching_paren(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced parentheses")


@dataclass
class PackagedFunction:
    file: str
    name: str                    # without schema
    args: list[tuple[str, str, bool]]   # (name, type as written, has default)
    returns: str                 # as written
    language: str
    volatility: str              # i, s or v
    strict: bool
    security_definer: bool
    parallel: str                # s, r or u
    config: list[str]            # name=value, as pg_proc.proconfig holds them
    body: str
    procedure: bool = False
    comment: str | None = None
    public_execute: bool = True


@dataclass
class PackagedTrigger:
    file: str
    name: str
    table: str                   # without schema
    timing: str                  # BEFORE, AFTER, INSTEAD OF
    events: list[str]            # INSERT, UPDATE, DELETE, TRUNCATE
    columns: list[str]           # UPDATE OF columns
    row: bool
    when: str | None
    function: str                # schema.name
    comment: str | None = None


@dataclass
class PackagedView:
    file: str
    name: str                    # schema.name
    options: list[str]
    query: str
    comment: str | None = None
    column_comments: dict[str, str] = field(default_factory=dict)


def _set_value(value: str) -> str:
    items = []
    for item in split_top(value):
        item = item.strip()
        if len(item) >= 2 and item[0] == item[-1] == "'":
            item = item[1:-1].replace("''", "'")
        items.append(item)
    return ", ".join(items)


def parse_function(file: str, statement: str) -> PackagedFunction:
    m = re.search(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", statement)
    if m is None:
        raise ValueError(f"{file}: no dollar-quoted body")
    tag = m.group(0)
    end = statement.find(tag, m.end())
    body = statement[m.end():end]
    head = strip_comments(statement[:m.start()])
    name_m = re.match(r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE)\s+(?:stepsync\.)?(\w+)\s*\(", head,
                      re.IGNORECASE)
    if name_m is None:
        raise ValueError(f"{file}: cannot read the function's name")
    close = _matching_paren(head, name_m.end() - 1)
    args = []
    for arg in split_top(head[name_m.end():close]):
        has_default = bool(re.search(r"\s(DEFAULT\s|=)", arg, re.IGNORECASE))
        arg = re.split(r"\s+DEFAULT\s+|\s*=\s*", arg, maxsplit=1, flags=re.IGNORECASE)[0].strip()
        arg = re.sub(r"^(IN|VARIADIC)\s+", "", arg, flags=re.IGNORECASE)
        argname, _, argtype = arg.partition(" ")
        args.append((argname, argtype.strip(), has_default))
    rest = head[close + 1:]
    # trailer after the body: LANGUAGE may come after AS $$...$$ as well
    rest += " " + strip_comments(statement[end + len(tag):])
    ret = re.search(r"\bRETURNS\s+(TABLE\s*\(.*?\)(?=\s*(?:LANGUAGE|IMMUTABLE|STABLE|VOLATILE|STRICT|SECURITY|SET|"
                    r"PARALLEL|COST|ROWS|CALLED|RETURNS\s+NULL|AS|$))|SETOF\s+\S+|\S+)",
                    rest, re.IGNORECASE | re.DOTALL)
    returns = ret.group(1) if ret else ""
    flags = rest[ret.end():] if ret else rest
    language = re.search(r"\bLANGUAGE\s+(\w+)", flags, re.IGNORECASE)
    volatility = re.search(r"\b(IMMUTABLE|STABLE|VOLATILE)\b", flags, re.IGNORECASE)
    parallel = re.search(r"\bPARALLEL\s+(SAFE|RESTRICTED|UNSAFE)\b", flags, re.IGNORECASE)
    config = [f"{k.lower()}={_set_value(v)}" for k, v in
              re.findall(r"\bSET\s+([\w.]+)\s*(?:=|\bTO\b)\s*(.+?)\s*$", flags, re.IGNORECASE | re.MULTILINE)]
    return PackagedFunction(
        file=file, name=name_m.group(2), procedure=name_m.group(1).upper() == "PROCEDURE", args=args,
        returns=returns.strip(),
        language=(language.group(1).lower() if language else "sql"),
        volatility=(volatility.group(1)[0].lower() if volatility else "v"),
        strict=bool(re.search(r"\bSTRICT\b|\bRETURNS\s+NULL\s+ON\s+NULL\s+INPUT\b", flags, re.IGNORECASE)),
        security_definer=bool(re.search(r"\bSECURITY\s+DEFINER\b", flags, re.IGNORECASE)),
        parallel=(parallel.group(1)[0].lower() if parallel else "u"),
        config=config, body=body)


def parse_trigger(file: str, statement: str) -> PackagedTrigger:
    sql = " ".join(strip_comments(statement).split())
    m = re.match(r"CREATE (?:OR REPLACE )?TRIGGER (\w+) (BEFORE|AFTER|INSTEAD OF) (.+?) ON (?:public\.)?(\w+) "
                 r"(?:FOR (?:EACH )?(ROW|STATEMENT) )?(?:WHEN \((.*)\) )?EXECUTE (?:FUNCTION|PROCEDURE) "
                 r"([\w.]+)\s*\(", sql, re.IGNORECASE)
    if m is None:
        raise ValueError(f"{file}: cannot read the trigger")
    events, columns = [], []
    for event in re.split(r"\s+OR\s+", m.group(3), flags=re.IGNORECASE):
        word, _, cols = event.partition(" OF ")
        events.append(word.strip().upper())
        columns += [c.strip() for c in cols.split(",") if c.strip()]
    return PackagedTrigger(file=file, name=m.group(1), table=m.group(4), timing=m.group(2).upper(), events=events,
                           columns=columns, row=(m.group(5) or "STATEMENT").upper() == "ROW", when=m.group(6),
                           function=m.group(7))


def parse_view(file: str, statement: str) -> PackagedView:
    sql = strip_comments(statement)
    m = re.match(r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+([\w.]+)\s*(?:WITH\s*\((.*?)\)\s*)?AS\s+(.*)$", sql,
                 re.IGNORECASE | re.DOTALL)
    if m is None:
        raise ValueError(f"{file}: cannot read the view")
    options = [re.sub(r"\s*=\s*", "=", o.strip()).lower() for o in (m.group(2) or "").split(",") if o.strip()]
    name = m.group(1) if "." in m.group(1) else f"public.{m.group(1)}"
    return PackagedView(file=file, name=name, options=options, query=m.group(3))


def packaged(*, citus: bool = False) -> tuple[list[PackagedFunction], list[PackagedTrigger], list[PackagedView]]:
    """Every function, trigger and view the packaged SQL defines (db/functions, db/triggers, db/views);
    with CITUS, as installed on a Citus coordinator (the distributed variant of db/citus/ where it has one)."""
    from stepsync.paths import citus_object_files, object_files

    functions: list[PackagedFunction] = []
    triggers: list[PackagedTrigger] = []
    views: list[PackagedView] = []
    for path in citus_object_files() if citus else object_files():
        last: Any = None
        for statement in split_statements(path.read_text(encoding="utf-8")):
            bare = " ".join(strip_comments(statement).split())
            upper = bare.upper()
            if re.match(r"CREATE (OR REPLACE )?(FUNCTION|PROCEDURE)", upper):
                last = parse_function(path.name, statement)
                functions.append(last)
            elif re.match(r"CREATE (OR REPLACE )?TRIGGER", upper):
                last = parse_trigger(path.name, statement)
                triggers.append(last)
            elif re.match(r"CREATE (OR REPLACE )?VIEW", upper):
                last = parse_view(path.name, statement)
                views.append(last)
            elif upper.startswith("COMMENT ON COLUMN") and isinstance(last, PackagedView):
                column = re.match(r"COMMENT ON COLUMN [\w.]+\.(\w+) IS", bare, re.IGNORECASE)
                if column:
                    last.column_comments[column.group(1)] = string_literal(bare) or ""
            elif upper.startswith("COMMENT ON") and last is not None:
                last.comment = string_literal(bare.split(" IS ", 1)[1]) if " IS " in bare else None
            elif re.match(r"REVOKE ALL (PRIVILEGES )?ON (FUNCTION|PROCEDURE) .* FROM PUBLIC", upper) and \
                    isinstance(last, PackagedFunction):
                last.public_execute = False
            elif re.match(r"GRANT (ALL|EXECUTE).* ON (FUNCTION|PROCEDURE) .* TO PUBLIC", upper) and \
                    isinstance(last, PackagedFunction):
                last.public_execute = True
    return functions, triggers, views


def normalize_expression(sql: str | None) -> str:
    """An expression or query without what the server adds or drops: casts, parentheses, case, spaces, `AS`."""
    if sql is None:
        return ""
    text = strip_comments(sql).lower().replace("pg_catalog.", "")
    text = re.sub(r"::\s*\"?[a-z_][a-z0-9_]*\"?(\s+varying|\s+with(out)?\s+time\s+zone|\s+precision)?(\[\])*",
                  "", text)
    text = re.sub(r"\bas\b", " ", text)
    text = re.sub(r"[()\s;]", "", text)
    return text
