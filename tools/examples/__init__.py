"""tools/examples/ ships inside the wheel as `stepsync.examples`: the example flows `stepsync demo` loads."""
