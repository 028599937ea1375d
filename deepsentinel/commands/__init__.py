"""The `deepsentinel` commands, one module each with `add_arguments(parser, name)` and `run(args) -> int`.

COMMANDS is the registry `deepsentinel.cli` builds its parser from, in the order `--help` lists them. A module is
imported when the parser is built; heavy imports (cdktf, the provider binding, checkov) happen inside `run`.
"""

COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("deepsentinel.commands.synth", "synthesize the stacks to cdktf.out/ and print a resource table"),
    "validate": ("deepsentinel.commands.validate", "synth, then terraform init -backend=false + validate"),
    "addresses": ("deepsentinel.commands.addresses", "check (or --update) the committed resource-address snapshot"),
    "bootstrap": (
        "deepsentinel.commands.bootstrap",
        "create the account stack: the state backend (once per account), people",
    ),
    "plan": ("deepsentinel.commands.plan", "a locked plan of one environment: exit 0 no changes, 2 changes, 1 error"),
    "deploy": ("deepsentinel.commands.deploy", "apply one environment (--local: on an embedded moto server)"),
    "destroy": ("deepsentinel.commands.deploy", "destroy one environment (--local: the local deployment)"),
    "review": ("deepsentinel.commands.review", "plan review: changes, risks, cost and policy as markdown"),
    "graph": ("deepsentinel.commands.graph", "draw the platform (modules as clusters) with Graphviz"),
    "output": ("deepsentinel.commands.output", "the deployed outputs with their descriptions (--json for CI)"),
    "smoke": ("deepsentinel.commands.smoke", "one video through the deployed platform (--local: with stand-ins)"),
    "status": ("deepsentinel.commands.status", "where one video is: its claim, its Batch job, its database row"),
    "redrive": (
        "deepsentinel.commands.redrive",
        "the jobs DLQ's messages and why each failed; moves back those that can be submitted again",
    ),
    "model": (
        "deepsentinel.commands.model",
        "publish weights to the models bucket (checked with ultralytics): model_key",
    ),
    "preflight": (
        "deepsentinel.commands.preflight",
        "what would stop a first deploy (quotas, models, tags, zone): exit 0 ready",
    ),
}
