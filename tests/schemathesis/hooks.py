"""schemathesis hooks for tests/schemathesis/run.sh.

The run authenticates as one API client; a generated call that disabled it, deleted it or
took away its scope would end every later call with 401 and test nothing. Calls that change
a client are therefore never sent to the caller's own client_id (they go to an unknown one,
which answers 404 as documented). Reads of it are left alone.
"""

import os

import schemathesis

CALLER = os.environ["SCHEMATHESIS_CALLER_CLIENT_ID"]


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.method.upper() != "GET" and (case.path_parameters or {}).get("client_id") == CALLER:
        case.path_parameters["client_id"] = "not-the-caller"
