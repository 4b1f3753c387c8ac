"""``mera-mm`` subcommands, one module each.

Each module defines ``add_parser(sub)``: it adds its subparser to ``sub`` (the object returned by
``ArgumentParser.add_subparsers``) and sets ``func`` to a callable taking the parsed namespace and
returning the exit status. Add a command by writing a module here and naming it in ``COMMANDS``.
"""

# Module names under lm_eval_patches.commands, in the order ``mera-mm --help`` lists them.
COMMANDS: list[str] = [
    "fixtures",
    "pack",
    "validate",
    "score",
    "report",
    "skills",
    "parity",
    "check_dataset",
    "new_task",
    "mirror",
    "cache",
    "retry_failed",
    "serve",
]
