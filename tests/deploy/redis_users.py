"""The ACL users a deployment file gives Redis (`--user NAME on >PASSWORD RULES...` on its command line),
checked against the rules the code relies on (worker/keys.py)."""

from __future__ import annotations

from worker.keys import REGISTRY_PUBLISHER_ACL, REGISTRY_READER_ACL

ADMIN_RULES = {"~*", "&*", "+@all"}


def redis_users(args: list[str]) -> dict[str, tuple[str, str]]:
    """user name -> (its password token, its rules as one string) from redis-server arguments."""
    users: dict[str, tuple[str, str]] = {}
    current: list[str] | None = None
    for arg in [*args, "--end"]:
        if arg.startswith("--"):
            if current is not None:
                name, state, password, *rules = current
                assert state == "on" and password.startswith(">"), f"user {name}: on >PASSWORD first, not {current}"
                users[name] = (password, " ".join(rules))
            current = [] if arg == "--user" else None
        elif current is not None:
            current.append(arg)
    return users


def check_users(args: list[str], reader: str) -> dict[str, str]:
    """The three users are there with the right rules; answers user -> password token."""
    users = redis_users(args)
    assert set(users) == {"default", reader, "publisher"}, sorted(users)
    assert set(users["default"][1].split()) >= ADMIN_RULES, "the default user must keep every permission"
    assert users[reader][1] == REGISTRY_READER_ACL
    assert users["publisher"][1] == REGISTRY_PUBLISHER_ACL
    passwords = [password for password, _ in users.values()]
    assert len(set(passwords)) == 3, "one password per user"
    return {name: password for name, (password, _) in users.items()}
