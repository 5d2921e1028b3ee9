#!/usr/bin/env python3
"""Splits a `perf script` of mariadbd (recorded with --call-graph dwarf) into the
phases of a command: each sample goes to the first phase of RULES found on its
stack. With CPU_PER_QUERY (µs), the shares are scaled to µs per query.
usage: perf script -i perf.data | scripts/mariadbd-phases.py [CPU_PER_QUERY]
(BENCHMARKS.md, "MariaDB's CPU per point select, phase by phase")."""
import sys, collections
RULES = [
    ("reset: THD::change_user (cleanup + init)", ["THD::change_user"]),
    ("read the next command (recv, poll wait)", ["my_net_read_packet", "my_net_read_packet_reallen"]),
    ("end of command: OK/EOF packet + write()", ["Protocol::end_statement"]),
    ("PREPARE (parse + prepare + metadata)", ["mysqld_stmt_prepare"]),
    ("SET STATEMENT: set and restore tx_read_only", ["run_set_statement_if_requested", "sql_set_variables", "LEX::restore_set_statement_var", "restore_set_statement_var"]),
    ("parse (COM_QUERY)", ["parse_sql"]),
    ("send column metadata", ["Protocol::send_result_set_metadata"]),
    ("open and lock tables", ["open_and_lock_tables", "open_tables", "lock_tables", "mysql_lock_tables"]),
    ("prepare + optimize the SELECT", ["JOIN::optimize", "JOIN::prepare", "mysql_prepare_select", "st_select_lex::handle_derived"]),
    ("execute: read the row, send it", ["JOIN::exec", "do_select", "JOIN::exec_inner"]),
    ("end of statement: close tables, free", ["close_thread_tables", "THD::cleanup_after_query", "free_root", "trans_commit_stmt", "ha_commit_trans"]),
    ("other write()", ["net_flush", "vio_write", "net_write_command"]),
    ("EXECUTE: set parameters, other", ["mysqld_stmt_execute", "Prepared_statement::execute_loop"]),
    ("other statement work", ["mysql_execute_command", "mysql_parse"]),
    ("other command dispatch", ["dispatch_command"]),
]
counts = collections.Counter()
total = 0
frames = []
def flush():
    global total, frames
    if not frames:
        return
    total += 1
    names = [f for f in frames]
    for name, keys in RULES:
        if any(any(k == n or n.startswith(k + "(") for k in keys) for n in names):
            counts[name] += 1
            break
    else:
        counts["other (thread, kernel, scheduler)"] += 1
    frames = []
for line in sys.stdin:
    if not line.strip():
        flush(); continue
    if line[0] not in " \t":
        flush(); continue
    parts = line.strip().split(None, 1)
    if len(parts) == 2:
        sym = parts[1].rsplit(" (", 1)[0]
        sym = sym.split("+0x")[0]
        frames.append(sym)
flush()
per = float(sys.argv[1]) if len(sys.argv) > 1 else None
for name, _ in RULES + [("other (thread, kernel, scheduler)", [])]:
    c = counts[name]
    share = c / total if total else 0
    extra = f"  {share*per:6.1f} us" if per else ""
    print(f"{share*100:5.1f}%{extra}  {name}")
print(f"{total} samples")
