"""The commands of the `stepsync` command line, one module each.

stepsync.cli declares them (names, arguments, options, help text) and calls
`run` in the module of the command's name: migrate, install, uninstall, sql,
status, doctor, check, preview, search, resync, replica, psql, demo, bench.
`run` takes the database URL (already resolved) and the options, prints the
command's output (tables and JSON through stepsync.output), and returns the
exit status when the command has one besides 0. What a command does to the
database lives below the commands, in the library modules (stepsync.install,
stepsync.resync, stepsync.replica, stepsync.history, stepsync.consistency,
stepsync.database) and in the SQL itself.
"""
