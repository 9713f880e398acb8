#!/bin/bash
# cnt-deploy: EC2 launch template user data for the application Auto Scaling group.
# A new instance installs git and the pinned toolchain, then configures itself with
# ansible-pull (local.yml) on the version the last deploy.yml recorded, completes the
# launch lifecycle action (CONTINUE once healthy, ABANDON if not) and installs a timer
# that re-runs ansible-pull when the repository moves. docs/autoscaling.md.
#
# Debian 12/13 AMIs. Runs as root (cloud-init runs user data as root). Its log:
# /var/log/cnt-bootstrap.log (and cloud-init's /var/log/cloud-init-output.log).
set -euo pipefail

# ---- Settings: edit here in the launch template (each can also come from the environment).
# The repository and the ref instances pull (a branch or a tag). Every commit an
# instance runs must be signed by one of CNT_TRUSTED_KEYS: an unsigned or wrongly signed
# one is refused (first boot: nothing runs; timer runs: the instance keeps its version).
CNT_REPO_URL=${CNT_REPO_URL:-https://git.example.org/cnt/cnt-deploy.git}
CNT_REPO_REF=${CNT_REPO_REF:-main}
# A private repository over HTTPS: the Secrets Manager secret holding its access token
# (read with the instance role each time git asks; never written to disk, user data,
# logs or .git/config). "" = a public repository.
CNT_REPO_TOKEN_SECRET=${CNT_REPO_TOKEN_SECRET:-}
# The team's OpenPGP public keys (ASCII-armored), pasted here in the launch template
# ("" = the file /etc/cnt-deploy/trusted-keys.asc, which the cloud-init variant writes).
CNT_TRUSTED_KEYS=${CNT_TRUSTED_KEYS:-}
# The environment: "" = the instance's cnt:environment tag.
CNT_ENVIRONMENT=${CNT_ENVIRONMENT:-}
# The inventory in the repository; %s stands for the environment.
CNT_PULL_INVENTORY=${CNT_PULL_INVENTORY:-inventories/pull/%s/hosts.yml}
# Secrets Manager secret holding the inventory's ansible-vault password; %s stands for
# the environment ("" = the inventory has no vault).
CNT_VAULT_SECRET=${CNT_VAULT_SECRET:-}
# The group's launch lifecycle hook ("" = the group has none).
CNT_LIFECYCLE_HOOK=${CNT_LIFECYCLE_HOOK:-cnt-launch}
# The group's terminating lifecycle hook: the instance drains itself (target groups,
# LiveKit rooms, agent jobs) before the group terminates it ("" = the group has none).
CNT_TERMINATE_HOOK=${CNT_TERMINATE_HOOK:-cnt-terminate}
# Extra pip options, e.g. "--index-url https://pypi.internal/simple" (tests: offline wheels).
CNT_PIP_OPTIONS=${CNT_PIP_OPTIONS:-}
# Instance metadata (tests point it at their own endpoint; boto3 follows it too).
CNT_IMDS_URL=${CNT_IMDS_URL:-http://169.254.169.254}
CNT_PULL_HOME=${CNT_PULL_HOME:-/opt/cnt-deploy}
# ---- End of settings.

# The log is root's only (0600) before anything is written to it.
umask 077
touch /var/log/cnt-bootstrap.log
chmod 0600 /var/log/cnt-bootstrap.log
exec > >(tee -a /var/log/cnt-bootstrap.log) 2>&1
echo "cnt-bootstrap: start $(date -u +%FT%TZ)"

# Completes this instance's launch lifecycle action with Python's standard library
# alone, so it works when apt, pip or git is what failed. Part of the launch template.
cat > /usr/local/sbin/cnt-lifecycle <<'LIFECYCLE'
#!/usr/bin/python3
"""cnt-lifecycle HOOK RESULT (cnt-deploy user data): complete this instance's launch
lifecycle action (CONTINUE or ABANDON). The instance, its region and the instance role's
credentials come from IMDSv2; its group from DescribeAutoScalingInstances; both calls
are signed with SigV4. Standard library only."""
import datetime, hashlib, hmac, json, os, sys, urllib.error, urllib.parse, urllib.request


def imds(path, token=None, method="GET"):
    base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254").rstrip("/")
    headers = {"X-aws-ec2-metadata-token": token} if token else {"X-aws-ec2-metadata-token-ttl-seconds": "300"}
    request = urllib.request.Request(base + path, headers=headers, method=method)
    return urllib.request.urlopen(request, timeout=5).read().decode().strip()


def sign(method, url, body, region, credentials, now):
    """The headers of an AWS query-protocol call to Auto Scaling, signed with SigV4."""
    parts = urllib.parse.urlsplit(url)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "host": parts.netloc,
               "x-amz-date": amz_date}
    if credentials.get("Token"):
        headers["x-amz-security-token"] = credentials["Token"]
    names = ";".join(sorted(headers))
    canonical = "\n".join([method, parts.path or "/", parts.query,
                           *(f"{name}:{headers[name]}" for name in sorted(headers)), "", names,
                           hashlib.sha256(body.encode()).hexdigest()])
    scope = f"{day}/{region}/autoscaling/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + credentials["SecretAccessKey"]).encode()
    for part in (day, region, "autoscaling", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials['AccessKeyId']}/{scope}, "
                                f"SignedHeaders={names}, Signature={signature}")
    return headers


def call(endpoint, region, credentials, params):
    body = urllib.parse.urlencode({**params, "Version": "2011-01-01"})
    url = endpoint.rstrip("/") + "/"
    headers = sign("POST", url, body, region, credentials, datetime.datetime.now(datetime.timezone.utc))
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        return urllib.request.urlopen(request, timeout=10).read().decode()
    except urllib.error.HTTPError as error:
        sys.exit(f"cnt-lifecycle: {params['Action']} refused: {error.read().decode()[:500]}")


def main():
    hook, result = sys.argv[1], sys.argv[2]
    token = imds("/latest/api/token", method="PUT")
    instance = imds("/latest/meta-data/instance-id", token)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or imds("/latest/meta-data/placement/region", token)
    role = imds("/latest/meta-data/iam/security-credentials/", token).splitlines()[0]
    credentials = json.loads(imds("/latest/meta-data/iam/security-credentials/" + role, token))
    endpoint = (os.environ.get("AWS_ENDPOINT_URL_AUTO_SCALING") or os.environ.get("AWS_ENDPOINT_URL")
                or f"https://autoscaling.{region}.amazonaws.com")
    described = call(endpoint, region, credentials,
                     {"Action": "DescribeAutoScalingInstances", "InstanceIds.member.1": instance})
    group = described.split("<AutoScalingGroupName>", 1)[1].split("</AutoScalingGroupName>", 1)[0]
    call(endpoint, region, credentials, {"Action": "CompleteLifecycleAction", "AutoScalingGroupName": group,
                                         "LifecycleHookName": hook, "InstanceId": instance,
                                         "LifecycleActionResult": result})
    print(f"cnt-lifecycle: {instance} in {group}: {hook} completed with {result}")


if __name__ == "__main__":
    main()
LIFECYCLE
chmod 0755 /usr/local/sbin/cnt-lifecycle

# Fail early, tell Auto Scaling: any failure before ansible-pull takes over (apt, pip,
# git, a refused signature) completes the launch action with ABANDON, so the group
# replaces the instance now instead of at the hook's timeout. From the first
# ansible-pull run on, local.yml (and cnt-pull before it) answers.
handed_over=false
abandon() {
  local status=$?
  if [ "$status" -ne 0 ] && ! $handed_over && [ -n "$CNT_LIFECYCLE_HOOK" ]; then
    echo "cnt-bootstrap: FAILED (exit $status) before ansible-pull: lifecycle action ABANDON"
    /usr/local/sbin/cnt-lifecycle "$CNT_LIFECYCLE_HOOK" ABANDON || echo "cnt-bootstrap: could not complete the lifecycle action" >&2
  fi
}
trap abandon EXIT

# AWS SDK settings to keep for later runs: endpoints (tests: the emulator) and IMDS.
export AWS_EC2_METADATA_SERVICE_ENDPOINT=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-$CNT_IMDS_URL}
aws_settings=$(env | grep -E '^AWS_(ENDPOINT_URL[A-Z_]*|EC2_METADATA_SERVICE_ENDPOINT|DEFAULT_REGION)=' || true)

# Where a launch's time goes: each step's seconds, printed on one line at the end.
timings=()
step() {
  if [ -n "${step_name:-}" ]; then timings+=("$step_name $((SECONDS - step_start))s"); fi
  step_name=$1
  step_start=$SECONDS
}

step apt
echo "cnt-bootstrap: installing git and Python's venv"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -q -y --no-install-recommends git gpg gpg-agent python3-venv ca-certificates util-linux \
  ${CNT_REPO_TOKEN_SECRET:+python3-boto3}

if [ -n "$CNT_REPO_TOKEN_SECRET" ]; then
  echo "cnt-bootstrap: git asks Secrets Manager ($CNT_REPO_TOKEN_SECRET) for the repository's token"
  # Part of the launch template (trusted), not of the repository: it must work before the
  # repository is cloned and verified. Debian's boto3, the instance role's credentials.
  cat > /usr/local/sbin/cnt-git-credential <<'HELPER'
#!/usr/bin/python3
"""git credential helper (cnt-deploy): `cnt-git-credential SECRET get` prints the token
held in Secrets Manager's SECRET, read with the instance role; stores nothing."""
import os, sys, urllib.request
import boto3
if sys.argv[-1] != "get":
    sys.exit(0)
sys.stdin.read()
region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
if not region:
    imds = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254").rstrip("/")
    put = urllib.request.Request(imds + "/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    token = urllib.request.urlopen(put, timeout=5).read().decode()
    get = urllib.request.Request(imds + "/latest/meta-data/placement/region",
                                 headers={"X-aws-ec2-metadata-token": token})
    region = urllib.request.urlopen(get, timeout=5).read().decode().strip()
endpoint = os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or os.environ.get("AWS_ENDPOINT_URL")
client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint or None)
secret = client.get_secret_value(SecretId=sys.argv[1])["SecretString"].strip()
print("username=x-access-token")
print(f"password={secret}")
HELPER
  chmod 0755 /usr/local/sbin/cnt-git-credential
  # System-wide (/etc/gitconfig): the helper's name and the secret's, never the token.
  git config --system credential.helper "/usr/local/sbin/cnt-git-credential $CNT_REPO_TOKEN_SECRET"
fi

step keys+clone
echo "cnt-bootstrap: installing the team's signing keys"
keyring=/etc/cnt-deploy/gnupg
install -d -m 0755 /etc/cnt-deploy
install -d -m 0700 "$keyring"
if [ -z "$CNT_TRUSTED_KEYS" ] && [ -f /etc/cnt-deploy/trusted-keys.asc ]; then
  CNT_TRUSTED_KEYS=$(cat /etc/cnt-deploy/trusted-keys.asc)
fi
if [ -z "$CNT_TRUSTED_KEYS" ] || ! printf '%s\n' "$CNT_TRUSTED_KEYS" | GNUPGHOME=$keyring gpg --batch --quiet --import; then
  echo "cnt-bootstrap: REFUSED: no signing key to trust (CNT_TRUSTED_KEYS): nothing will run unverified" >&2
  exit 1
fi

echo "cnt-bootstrap: cloning $CNT_REPO_URL at $CNT_REPO_REF"
mkdir -p "$CNT_PULL_HOME"
if [ ! -d "$CNT_PULL_HOME/repo/.git" ]; then
  # Nothing of it is checked out (nor run) before its signature is verified.
  git clone --quiet --no-checkout --branch "$CNT_REPO_REF" "$CNT_REPO_URL" "$CNT_PULL_HOME/repo"
fi
commit=$(git -C "$CNT_PULL_HOME/repo" rev-parse --verify "HEAD^{commit}")
if ! GNUPGHOME=$keyring git -C "$CNT_PULL_HOME/repo" verify-commit "$commit"; then
  echo "cnt-bootstrap: REFUSED $CNT_REPO_REF at $commit: not signed by a trusted key; nothing runs" >&2
  exit 1
fi
git -C "$CNT_PULL_HOME/repo" checkout --quiet --force "$commit"

step toolchain
echo "cnt-bootstrap: installing the pinned toolchain (bootstrap/requirements.txt, every file by its hash)"
python3 -m venv "$CNT_PULL_HOME/venv"
# --no-compile: byte-compiling every module of the `ansible` package (tens of thousands,
# most never imported here) took most of this step; Python compiles what runs, once.
# shellcheck disable=SC2086  # CNT_PIP_OPTIONS is a list of options
"$CNT_PULL_HOME/venv/bin/pip" install --quiet --no-compile --disable-pip-version-check --require-hashes --no-deps $CNT_PIP_OPTIONS \
  -r "$CNT_PULL_HOME/repo/bootstrap/requirements.txt"

if [ -z "$CNT_ENVIRONMENT" ]; then
  echo "cnt-bootstrap: reading the environment from the instance's cnt:environment tag"
  CNT_ENVIRONMENT=$("$CNT_PULL_HOME/venv/bin/python" "$CNT_PULL_HOME/repo/bootstrap/instance.py" tag cnt:environment)
fi
# shellcheck disable=SC2059  # the settings are formats with one %s
CNT_PULL_INVENTORY=$(printf "$CNT_PULL_INVENTORY" "$CNT_ENVIRONMENT")
# shellcheck disable=SC2059
CNT_VAULT_SECRET=$(printf "$CNT_VAULT_SECRET" "$CNT_ENVIRONMENT")
if [ ! -f "$CNT_PULL_HOME/repo/$CNT_PULL_INVENTORY" ]; then
  echo "cnt-bootstrap: no inventory $CNT_PULL_INVENTORY in the repository (environment '$CNT_ENVIRONMENT')" >&2
  exit 1
fi

echo "cnt-bootstrap: environment $CNT_ENVIRONMENT, inventory $CNT_PULL_INVENTORY"
cat > /etc/cnt-deploy/pull.env <<SETTINGS
# Written by the user data (bootstrap/user-data.sh); read by cnt-pull.
CNT_REPO_URL=$CNT_REPO_URL
CNT_REPO_REF=$CNT_REPO_REF
CNT_REPO_TOKEN_SECRET=$CNT_REPO_TOKEN_SECRET
CNT_ENVIRONMENT=$CNT_ENVIRONMENT
CNT_PULL_INVENTORY=$CNT_PULL_INVENTORY
CNT_LIFECYCLE_HOOK=$CNT_LIFECYCLE_HOOK
CNT_TERMINATE_HOOK=$CNT_TERMINATE_HOOK
CNT_VAULT_SECRET=$CNT_VAULT_SECRET
CNT_IMDS_URL=$CNT_IMDS_URL
CNT_PULL_HOME=$CNT_PULL_HOME
CNT_PULL_GNUPGHOME=$keyring
$aws_settings
SETTINGS
umask 022

step ansible-pull
echo "cnt-bootstrap: first ansible-pull run"
handed_over=true
# The first run also reports its slowest tasks (the launch's timings, below).
ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks PROFILE_TASKS_TASK_OUTPUT_LIMIT=12 \
  "$CNT_PULL_HOME/repo/roles/cnt_pull/files/cnt-pull" --first-boot
step end
echo "cnt-bootstrap: done $(date -u +%FT%TZ) in ${SECONDS}s: ${timings[*]}"
