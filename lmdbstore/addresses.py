"""Signal addresses and sender-key names, as every backend reads them.

A Signal address is ``user@server`` (device 0) or ``user:device@server``, possibly followed by
``.N`` (the Signal device number). A sender-key name is ``group_jid:address``; a group JID
holds no ``:``, so the name splits at its first one.

PN -> LID migration rewrites the user and the server: ``5511@s.whatsapp.net`` becomes
``8888@lid`` and ``5511:7@s.whatsapp.net.0`` becomes ``8888:7@lid.0``. The phone-number
servers and their LID counterparts are `PN_TO_LID_SERVER`; an address of the same user
on any other server (already a LID, a group, a newsletter) is left alone.
"""

from __future__ import annotations

from lmdbstore import validate
from lmdbstore.errors import ValidationError

PN_TO_LID_SERVER = {"s.whatsapp.net": "lid", "c.us": "lid", "hosted": "hosted.lid"}


def bare_user(value: object, what: str) -> bytes:
    """A user part without server or device (``5511``), as UTF-8 bytes."""
    raw = validate.text(value, what)
    if b"@" in raw or b":" in raw:
        raise ValidationError(f"{what} must be a bare user, without '@' or ':': {value!r}")
    return raw


def user_of(address: str) -> str:
    """The user part of an address (before ``:`` or ``@``)."""
    end = len(address)
    for sep in (":", "@"):
        at = address.find(sep)
        if at != -1:
            end = min(end, at)
    return address[:end]


def belongs_to(address: str, user: str) -> bool:
    """Whether ``address`` is ``user@...`` or ``user:...`` (not merely prefixed by ``user``)."""
    return address.startswith(user) and address[len(user) : len(user) + 1] in ("@", ":")


def pn_to_lid_address(address: str, pn_user: str, lid_user: str) -> str | None:
    """The LID address for a PN ``address`` of ``pn_user``, or ``None`` when it is not one."""
    if not belongs_to(address, pn_user):
        return None
    user_part, _, rest = address.partition("@")
    server, dot, number = rest.rpartition(".")
    if not (dot and number.isascii() and number.isdigit()):
        server, number = rest, ""
    lid_server = PN_TO_LID_SERVER.get(server)
    if lid_server is None:
        return None
    device = user_part[len(pn_user) :]  # "" or ":7"
    return f"{lid_user}{device}@{lid_server}" + (f".{number}" if number else "")


def pn_to_lid_sender_key_name(name: str, pn_user: str, lid_user: str) -> str | None:
    """The sender-key name with its address migrated, or ``None`` when it is not PN's."""
    group, sep, address = name.partition(":")
    if not sep:
        return None
    migrated = pn_to_lid_address(address, pn_user, lid_user)
    return None if migrated is None else f"{group}:{migrated}"


def migrated_name(new: str, what: str) -> bytes:
    """A migrated address or name, checked like any key string (a longer LID user can push
    it past the limit: the whole migration is then refused)."""
    return validate.text(new, what)
