#!/usr/bin/python
"""Take, renew or release a lock in Redis, atomically (one Lua script per step)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: cnt_redis_lock
short_description: The fleet's deploy lock in Redis, with compare-and-set renew and release
description:
  - Takes the lock when it is free, renews it (resets its expiry) when the caller already
    holds it, and reports the holder when another run does. Releases it only when the caller
    holds it. Each step is one Lua script run by Redis, so no other run can slip between the
    read and the write (community.general.redis_data reads and writes in two calls, which
    lets a renew or a release clobber a newer run's lock).
  - The holder is recognised by the start of the lock's value (I(owner) followed by a space).
  - With I(shared), the lock is taken in shared mode, as ansible-pull runs take it (many at
    once, never while a deploy holds it): the value joins the sorted set C(<key>:shared),
    scored by its expiry. An exclusive take (a deploy) is refused while a shared holder
    has not expired, naming them.
options:
  key: {description: The lock's key., type: str, required: true}
  owner: {description: This run's identifier (the start of the value)., type: str, required: true}
  value:
    description: The value to store when taking the lock (starts with I(owner) and a space).
    type: str
    default: ""
  ttl: {description: Seconds until the lock expires unless renewed., type: int, default: 1800}
  state:
    description: C(held) takes or renews it; C(released) releases it.
    type: str
    choices: [held, released]
    default: held
  force: {description: Take it even when another run holds it (that run is known dead)., type: bool, default: false}
  shared: {description: Take or release it in shared mode (ansible-pull runs)., type: bool, default: false}
  login_host: {description: Redis host., type: str, required: true}
  login_port: {description: Redis port., type: int, default: 6379}
  login_user: {description: ACL user name (ElastiCache RBAC)., type: str}
  login_password: {description: AUTH token or the user's password., type: str}
  db: {description: Database number., type: int, default: 0}
  tls: {description: Connect with TLS., type: bool, default: true}
  ca_certs: {description: CA bundle that signed the server's certificate (default the system's)., type: str}
requirements: [redis (redis-py)]
"""

RETURN = r"""
outcome:
  description: taken, joined (shared, others hold it too), renewed, held_by_other, released, not_ours or absent
  type: str
  returned: always
holder: {description: The lock's value after the step (empty when free)., type: str, returned: always}
"""

# Ansible's module layout puts the documentation first.
from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

try:
    import redis
except ImportError:  # pragma: no cover - reported through the module
    redis = None

# The shared holders' expiry scores are Redis's own clock (TIME), in milliseconds.
NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# The shared holders that have not expired, joined (after dropping the expired ones).
SHARED = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local shared = redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')
"""

# KEYS[1] lock, KEYS[2] shared holders; ARGV: owner prefix, value, ttl ms, force.
# Returns {outcome, holder}.
ACQUIRE = (
    NOW
    + SHARED
    + """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'renewed', current}
end
if current and ARGV[4] ~= '1' then
  return {'held_by_other', current}
end
if #shared > 0 and ARGV[4] ~= '1' then
  return {'held_by_other', table.concat(shared, '; ')}
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {'taken', ARGV[2]}
"""
)

# Shared mode: refused while a deploy holds the lock; else this run joins (or renews).
ACQUIRE_SHARED = (
    NOW
    + SHARED
    + """
local current = redis.call('GET', KEYS[1])
if current then
  return {'held_by_other', current}
end
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if string.sub(member, 1, string.len(ARGV[1])) == ARGV[1] then
    redis.call('ZREM', KEYS[2], member)
  end
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {#shared > 0 and 'joined' or 'taken', ARGV[2]}
"""
)

# KEYS[1] lock; ARGV[1] owner prefix.
RELEASE = """
local current = redis.call('GET', KEYS[1])
if not current then
  return {'absent', ''}
end
if string.sub(current, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'released', ''}
end
return {'not_ours', current}
"""

# KEYS[2] shared holders; ARGV[1] owner prefix.
RELEASE_SHARED = """
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if string.sub(member, 1, string.len(ARGV[1])) == ARGV[1] then
    redis.call('ZREM', KEYS[2], member)
    return {'released', ''}
  end
end
return {'absent', ''}
"""

# Read only (check mode): the exclusive holder, else the shared ones, joined.
READ = (
    NOW
    + """
local current = redis.call('GET', KEYS[1])
if current then
  return {'read', current}
end
return {'read', table.concat(redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf'), '; ')}
"""
)


def run(module: AnsibleModule) -> dict:
    p = module.params
    prefix = p["owner"] + " "
    if p["state"] == "held" and not p["value"].startswith(prefix):
        module.fail_json(msg="value must start with the owner and a space")
    client = redis.Redis(
        host=p["login_host"],
        port=p["login_port"],
        username=p["login_user"] or None,
        password=p["login_password"] or None,
        db=p["db"],
        ssl=p["tls"],
        ssl_ca_certs=p["ca_certs"] or None,
        socket_timeout=10,
        socket_connect_timeout=10,
    )
    keys = [p["key"], p["key"] + ":shared"]
    try:
        if module.check_mode:
            _, holder = client.eval(READ, 2, *keys)
            holder = holder.decode() if isinstance(holder, bytes) else holder
            mine = holder.startswith(prefix)
            if p["state"] == "held":
                outcome = "renewed" if mine else "held_by_other" if holder and not p["force"] else "taken"
            else:
                outcome = "released" if mine else "not_ours" if holder else "absent"
            return {"changed": outcome in ("taken", "released"), "outcome": outcome, "holder": holder}
        if p["state"] == "held":
            args = [prefix, p["value"], p["ttl"] * 1000, "1" if p["force"] else "0"]
            outcome, holder = client.eval(ACQUIRE_SHARED if p["shared"] else ACQUIRE, 2, *keys, *args)
        else:
            outcome, holder = client.eval(RELEASE_SHARED if p["shared"] else RELEASE, 2, *keys, prefix)
    except redis.RedisError as error:
        # The message names the server, never the credentials.
        module.fail_json(msg=f"Redis {p['login_host']}:{p['login_port']}: {type(error).__name__}: {error}")
    outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
    holder = holder.decode() if isinstance(holder, bytes) else holder
    return {"changed": outcome in ("taken", "joined", "released"), "outcome": outcome, "holder": holder}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "key": {"type": "str", "required": True, "no_log": False},
            "owner": {"type": "str", "required": True},
            "value": {"type": "str", "default": ""},
            "ttl": {"type": "int", "default": 1800},
            "state": {"type": "str", "choices": ["held", "released"], "default": "held"},
            "force": {"type": "bool", "default": False},
            "shared": {"type": "bool", "default": False},
            "login_host": {"type": "str", "required": True},
            "login_port": {"type": "int", "default": 6379},
            "login_user": {"type": "str"},
            "login_password": {"type": "str", "no_log": True},
            "db": {"type": "int", "default": 0},
            "tls": {"type": "bool", "default": True},
            "ca_certs": {"type": "str"},
        },
        supports_check_mode=True,
    )
    if redis is None:
        module.fail_json(msg=missing_required_lib("redis"))
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
