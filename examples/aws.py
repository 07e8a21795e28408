"""AWS side of the example runs, against the moto server (boto3 from scripts/services' venv).

Called by examples/lib.sh; one subcommand per step. Every subcommand reads the run's
account, credentials and endpoint from the environment (lib.sh sets them) and never
prints a secret value: values are read from and compared with files, and only
variable names appear in messages.

The example files name the AWS documentation account 123456789012. A run replaces it
with an account of its own (STS AssumeRole into a random account, which moto keeps
apart), so runs never see each other's secrets, parameters, log groups or task
definitions, while the names stay exactly as the files write them.
"""

import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.session
from botocore.validate import ParamValidator

FILE_ACCOUNT = "123456789012"
REGION = os.environ.get("AWS_REGION", "us-east-1")


def fail(msg):
    print(f"FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def client(service):
    return boto3.client(service, region_name=REGION)


def account_subst(text):
    return text.replace(FILE_ACCOUNT, os.environ["EX_ACCOUNT"])


def load_json(path, subst=True):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return json.loads(account_subst(text) if subst else text)


def container(taskdef):
    defs = taskdef["containerDefinitions"]
    return defs[0]


# ---------------------------------------------------------------- account


def cmd_account(role_name):
    """Assume ROLE_NAME in a fresh random account; print shell assignments."""
    account = "".join(random.choice("0123456789") for _ in range(12))
    while account == FILE_ACCOUNT or account.startswith("0"):
        account = "".join(random.choice("0123456789") for _ in range(12))
    creds = client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role_name}",
        RoleSessionName="deckhand-example",
    )["Credentials"]
    print(f"EX_ACCOUNT={account}")
    print(f"AWS_ACCESS_KEY_ID={creds['AccessKeyId']}")
    print(f"AWS_SECRET_ACCESS_KEY={creds['SecretAccessKey']}")
    print(f"AWS_SESSION_TOKEN={creds['SessionToken']}")


# ---------------------------------------------------------------- task definition


def cmd_taskdef_env(path, out):
    """Write the container's `environment` as NUL-separated NAME=VALUE to OUT."""
    c = container(load_json(path))
    with open(out, "w", encoding="utf-8") as f:
        for pair in c.get("environment", []):
            f.write(f"{pair['name']}={pair['value']}\0")


def cmd_taskdef_get(path, what):
    """Print one field of the first container, as lines (lists) or text."""
    td = load_json(path)
    c = container(td)
    if what == "entryPoint":
        vals = c.get("entryPoint", [])
    elif what == "command":
        vals = c.get("command", [])
    elif what == "healthCheck.command":
        cmd = c["healthCheck"]["command"]
        if cmd[0] != "CMD":
            fail(f"{path}: healthCheck.command must be the exec form [\"CMD\", ...], not {cmd[0]}")
        vals = cmd[1:]
    elif what == "containerPort":
        vals = [str(c["portMappings"][0]["containerPort"])]
    elif what == "stopTimeout":
        vals = [str(c.get("stopTimeout", 30))]
    elif what == "user":
        vals = [c["user"]] if "user" in c else []
    elif what == "name":
        vals = [c["name"]]
    elif what == "family":
        vals = [td["family"]]
    else:
        fail(f"unknown field {what}")
    for v in vals:
        print(v)


def cmd_taskdef_local(path, out):
    """Write the task definition with the run's account in place of the files' one, and
    print its (first) container's name.

    `agent check --task-definition` reads this copy: the references it resolves are then
    the ones the run seeded.
    """
    td = load_json(path)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(td, f, indent=2)
    print(container(td)["name"])


def cmd_register(path):
    """RegisterTaskDefinition in moto: boto3 checks the file against the ECS API model."""
    td = load_json(path)
    ecs = client("ecs")
    try:
        r = ecs.register_task_definition(**td)["taskDefinition"]
    except Exception as e:  # noqa: BLE001 - the message is the point
        fail(f"{path} was refused by RegisterTaskDefinition: {e}")
    c = container(td)
    if c.get("entryPoint", [None])[0] not in ("agent", "/usr/local/bin/agent"):
        fail(f"{path}: entryPoint must start the agent")
    hc = c.get("healthCheck", {}).get("command", [])
    if hc[:2] not in (["CMD", "healthcheck"], ["CMD", "/usr/local/bin/healthcheck"]) or "probe" not in hc:
        fail(f"{path}: healthCheck must run `healthcheck probe` in exec form")
    if "stopTimeout" not in c:
        fail(f"{path}: set stopTimeout (the agent's DECKHAND_STOP_TIMEOUT must fit in it)")
    if "secrets" in c:
        fail(f"{path}: secrets are references in `environment` (read by the agent), not ECS `secrets`")
    print(f"{r['family']}:{r['revision']}")


def cmd_run_task(taskdef_path, overrides_path):
    """Check the run-task overrides against ECS's RunTask model, print the command.

    moto's RunTask needs container instances for most set-ups, so the overrides are
    validated with botocore's own validator against the RunTask input shape (the check
    the AWS CLI makes before sending), and their container name against the task
    definition.
    """
    td = load_json(taskdef_path)
    overrides = load_json(overrides_path)
    model = botocore.session.get_session().get_service_model("ecs")
    params = {"taskDefinition": td["family"], "overrides": overrides}
    report = ParamValidator().validate(params, model.operation_model("RunTask").input_shape)
    if report.has_errors():
        fail(f"{overrides_path} is not valid RunTask input: {report.generate_report()}")
    co = overrides["containerOverrides"][0]
    if co["name"] != container(td)["name"]:
        fail(f"{overrides_path}: container {co['name']!r} is not in {taskdef_path}")
    for v in co["command"]:
        print(v)


def cmd_iam_policy(path, name):
    """CreatePolicy in moto, which checks the policy grammar (actions, ARNs, effects)."""
    doc = load_json(path)
    iam = client("iam")
    try:
        iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc))
    except Exception as e:  # noqa: BLE001
        fail(f"{path} was refused by IAM CreatePolicy: {e}")
    for st in doc["Statement"]:
        for r in st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]:
            if r == "*" and not st.get("Condition"):
                fail(f"{path}: statement {st.get('Sid')} grants Resource \"*\" without a condition")
        for a in st["Action"] if isinstance(st["Action"], list) else [st["Action"]]:
            if a.endswith("*"):
                fail(f"{path}: statement {st.get('Sid')} grants wildcard action {a}")


def cmd_target_group(path, port):
    """CreateTargetGroup in moto with the file's health-check settings; print them."""
    tg = load_json(path)
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    elb = client("elbv2")
    name = f"ex-{random.randrange(16**8):08x}"
    try:
        arn = elb.create_target_group(
            Name=name, Protocol="HTTP", Port=int(port), VpcId=vpc, TargetType="ip", **tg
        )["TargetGroups"][0]["TargetGroupArn"]
    except Exception as e:  # noqa: BLE001
        fail(f"{path} was refused by CreateTargetGroup: {e}")
    got = elb.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    print(got["HealthCheckPath"])
    print(got["HealthCheckPort"])
    print(got["Matcher"]["HttpCode"])


# ---------------------------------------------------------------- seeding


def cmd_put_secret(name, value_file):
    with open(value_file, encoding="utf-8") as f:
        value = f.read()
    client("secretsmanager").create_secret(Name=name, SecretString=value)


def cmd_put_parameters(values_file, kms_types):
    """Create every NAME: VALUE of the JSON file; names in KMS_TYPES as SecureString."""
    secure = set(kms_types.split(",")) if kms_types else set()
    ssm = client("ssm")
    for name, value in load_json(values_file, subst=False).items():
        kind = "SecureString" if name.rsplit("/", 1)[-1] in secure else "String"
        ssm.put_parameter(Name=name, Value=value, Type=kind)


# ---------------------------------------------------------------- checks


def read_environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read()
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode()] = v.decode(errors="replace")
    return env


def cmd_check_env(pid, expected_file, absent):
    """The app's environment holds every expected NAME=VALUE and none of ABSENT."""
    env = read_environ(pid)
    expected = load_json(expected_file, subst=False)
    wrong = [k for k, v in expected.items() if env.get(k) != v]
    if wrong:
        missing = [k for k in wrong if k not in env]
        fail(
            f"the app's environment lacks or has wrong values for {len(wrong)} variable(s): "
            f"{', '.join(sorted(wrong))} (missing: {', '.join(sorted(missing)) or 'none'})"
        )
    leaked = [k for k in absent.split(",") if k and k in env]
    if leaked:
        fail(f"the app's environment still has {', '.join(leaked)}")
    print(len(expected))


def cmd_logs(group, out):
    """Every event of every stream of GROUP, oldest first, one message per line."""
    logs = client("logs")
    events = []
    kwargs = {"logGroupName": group}
    while True:
        r = logs.filter_log_events(**kwargs)
        events.extend(r["events"])
        if not r.get("nextToken"):
            break
        kwargs["nextToken"] = r["nextToken"]
    events.sort(key=lambda e: (e["timestamp"], e.get("ingestionTime", 0)))
    with open(out, "w", encoding="utf-8") as f:
        for e in events:
            f.write(e["message"].replace("\n", "\\n") + "\n")
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    print(f"{len(events)} events in {len(streams)} stream(s): {', '.join(s['logStreamName'] for s in streams)}")


def cmd_log_retention(group):
    """The retention in days of GROUP ("none" when it keeps events forever)."""
    groups = client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    match = [g for g in groups if g["logGroupName"] == group]
    if not match:
        fail(f"log group {group} does not exist")
    print(match[0].get("retentionInDays", "none"))


def cmd_no_secrets(values_file, *paths):
    """No value of VALUES_FILE (a JSON object) appears in any of PATHS."""
    values = [v for v in load_json(values_file, subst=False).values() if len(v) >= 6]
    for p in paths:
        with open(p, "rb") as f:
            data = f.read().decode(errors="replace")
        for name, v in load_json(values_file, subst=False).items():
            if len(v) >= 6 and v in data:
                fail(f"the value of {name} appears in {p}")
    print(len(values))


def cmd_creds_server(port_file, count_file):
    """The ECS container credentials endpoint: GET with the authorization token answers
    the task role's temporary credentials (from this process's environment)."""
    token = os.environ["EX_CREDS_TOKEN"]
    body = json.dumps(
        {
            "AccessKeyId": os.environ["EX_TASK_KEY"],
            "SecretAccessKey": os.environ["EX_TASK_SECRET"],
            "Token": os.environ["EX_TASK_SESSION"],
            "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
            "RoleArn": os.environ.get("EX_TASK_ROLE", ""),
        }
    ).encode()
    served = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.headers.get("Authorization") != token:
                self.send_response(401)
                self.end_headers()
                return
            with lock:
                served[0] += 1
                with open(count_file, "w", encoding="utf-8") as f:
                    f.write(str(served[0]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


COMMANDS = {
    "account": cmd_account,
    "taskdef-env": cmd_taskdef_env,
    "taskdef-get": cmd_taskdef_get,
    "taskdef-local": cmd_taskdef_local,
    "register": cmd_register,
    "run-task": cmd_run_task,
    "iam-policy": cmd_iam_policy,
    "target-group": cmd_target_group,
    "put-secret": cmd_put_secret,
    "put-parameters": cmd_put_parameters,
    "check-env": cmd_check_env,
    "logs": cmd_logs,
    "no-secrets": cmd_no_secrets,
    "log-retention": cmd_log_retention,
    "creds-server": cmd_creds_server,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(f"usage: aws.py {'|'.join(COMMANDS)} ARGS...")
    COMMANDS[sys.argv[1]](*sys.argv[2:])
