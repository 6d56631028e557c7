"""The domain: grammar and parser, action models, the shared HTTP client, providers, executor."""

import sys

# httpx imports its command-line client whenever click and rich are installed, as they are
# here for untag's own CLI: click, rich and pygments, a tenth of a second and a few MB in
# every process that uses httpx (each server worker), for a program untag never runs.  A
# None entry in the module cache makes that import fail, which httpx handles (its `main`
# then only says the CLI is not installed).  Here, because commands.http is the one module
# that imports httpx, and this runs before it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
