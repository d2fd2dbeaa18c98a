"""A power-loss simulator: the disk states a power loss can leave, built from a real run.

A workload runs under ``strace``, which records every write, sync and directory operation it
makes below a directory, and every acknowledgement it prints (``ack N`` on stdout: write
number ``N`` returned to its caller). From that record, `crash_states` builds the
states a power loss at any point could leave on disk, in the way of the ALICE study (OSDI
2014):

- file data made durable by ``fsync``/``fdatasync`` stays; every page written since (4 KiB)
  independently keeps its durable content or takes any of the versions written to it,
  among them the adversarial state where the meta pages of ``data.mdb`` reached the disk
  and nothing else did;
- directory operations (create, rename, link, unlink, mkdir) are durable once their
  directory is fsynced; of those not yet durable, any prefix in order has reached the disk
  (a journal commits them in order).

`check_states` materialises each state in a directory of its own and hands it to a
checker process (a crash of which, SIGBUS included, counts as a failed state), which opens
the store as the first process of a new boot would and checks it: it opens, ``verify()`` is
clean, and every acknowledged write the level promises is there with its value. What is
promised at ``"normal"`` is read from the checkpoint file the state holds
(`lmdbstore.durability`'s format); the rest knows only the names of LMDB's files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING

from lmdbstore.durability import CHECKPOINT_FILE, LOCK_FILE, read_checkpoint, read_slot

if TYPE_CHECKING:
    from collections.abc import Iterator

PAGE = 4096
SYSCALLS = (
    "openat,write,writev,pwrite64,pwritev,pwritev2,pread64,lseek,fsync,fdatasync,ftruncate,"
    "rename,renameat,renameat2,link,linkat,unlink,unlinkat,mkdir,mkdirat,rmdir"
)
"""What is traced. ``ftruncate`` is modelled for no file: only lock files are truncated
(LMDB's, which the first process after a reboot rebuilds, and lmdbstore's, whose content
matters only to live processes)."""

LOCK_FILES = ("lock.mdb", LOCK_FILE)
_LINE = re.compile(r"^(\d+) +(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)\) += (-?\d+)")
_HEX = re.compile(r"(?:\\x[0-9a-f]{2})+")


def _unhex(text: str) -> bytes:
    return bytes.fromhex(text.replace("\\x", ""))


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments (strings are hex-escaped: no commas inside)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _fd_path(arg: str) -> str | None:
    """The path of an ``fd<path>`` argument (strace -y), or None."""
    found = re.match(r"^-?\w+<(.*)>$", arg)
    if found is None:
        return None
    inner = found.group(1)
    return _unhex(inner).decode("utf-8", "replace") if inner.startswith("\\x") else inner


def _string(arg: str) -> bytes:
    if arg.endswith("..."):
        raise ValueError("strace truncated a string: raise -s")
    return _unhex(arg.strip('"')) if arg != '""' else b""


def _path_arg(dirfd: str | None, arg: str) -> str:
    name = _string(arg).decode("utf-8", "replace")
    if os.path.isabs(name) or dirfd is None:
        return os.path.normpath(name)
    base = _fd_path(dirfd)
    return os.path.normpath(os.path.join(base or "/", name))


@dataclasses.dataclass
class Event:
    """One operation of the record, in completion order."""

    kind: str  # write, sync, meta, ack, snapshot
    path: str = ""
    offset: int = 0
    data: bytes = b""
    op: tuple[str, ...] = ()
    ack: int = -1
    thread: str = ""  # who made it (strace -f names threads by their id)


def record(script: str, args: list[str], under: str, timeout: float = 120) -> list[Event]:
    """Run ``python -c script *args`` under strace and return the events below ``under``,
    with the ``ack N`` lines it printed. The script's exit status must be 0."""
    with tempfile.TemporaryDirectory(prefix="lmdbstore-trace-") as scratch:
        trace = os.path.join(scratch, "trace")
        command = [
            "strace", "-f", "-qq", "-xx", "-y", "-s", str(1 << 24), "-e",
            f"trace={SYSCALLS}", "-o", trace, sys.executable, "-c", script, *args,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the workload failed: {done.stderr.decode()[-2000:]}")
        with open(trace) as lines:
            return list(_parse(lines, os.path.realpath(under)))


def _parse(lines: Iterator[str], under: str) -> Iterator[Event]:
    unfinished: dict[str, str] = {}
    seen = _Seen()
    for raw in lines:
        found = _LINE.match(raw.rstrip("\n"))
        if found is None:
            continue
        pid, rest = found.groups()
        if rest.endswith("<unfinished ...>"):
            unfinished[pid] = rest[: -len("<unfinished ...>")].rstrip()
            continue
        resumed = re.match(r"^<\.\.\. \w+ resumed>(.*)$", rest)
        if resumed is not None:
            rest = unfinished.pop(pid, "") + resumed.group(1)
        call = _CALL.match(rest)
        if call is None or int(call.group(3)) < 0:
            continue
        name, argtext, result = call.group(1), call.group(2), int(call.group(3))
        yield from _event(name, _split_args(argtext), result, pid, seen, under)


@dataclasses.dataclass
class _Seen:
    """What parsing remembers between lines: file offsets of ``write`` by (pid, fd), and the
    part of a stdout line not yet ended, by pid."""

    offsets: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    stdout: dict[str, str] = dataclasses.field(default_factory=dict)
    synchronous: set[str] = dataclasses.field(default_factory=set)  # fds opened O_DSYNC


def _below(path: str | None, under: str) -> bool:
    return path is not None and (path == under or path.startswith(under + os.sep))


def _event(
    name: str,
    args: list[str],
    result: int,
    pid: str,
    seen: _Seen,
    under: str,
) -> Iterator[Event]:
    if name in ("write", "writev", "pwrite64", "pwritev", "pwritev2"):
        # LMDB writes single pages with pwrite and runs of pages with lseek + writev.
        if "writev" in name:
            bases = re.findall(r'iov_base="([^"]*)"', args[1])
            data = b"".join(_unhex(b) for b in bases)[:result]
        else:
            data = _string(args[1])[:result]
        if name == "write" and args[0].startswith("1<"):
            # stdout: print() may write a line in pieces; an ack counts once it is whole.
            text = seen.stdout.get(pid, "") + data.decode(errors="replace")
            *lines, seen.stdout[pid] = text.split("\n")
            for line in lines:
                if line.startswith("ack "):
                    yield Event("ack", ack=int(line.split()[1]))
            return
        fd = args[0].split("<")[0]
        if name in ("write", "writev"):  # at the file offset
            offset = seen.offsets.get((pid, fd), 0)
            seen.offsets[(pid, fd)] = offset + result
        else:
            offset = int(args[3])
        path = _fd_path(args[0])
        if _below(path, under):
            yield Event("write", str(path), offset, data, thread=pid)
            if fd in seen.synchronous:
                # Through an O_DSYNC descriptor (LMDB's meta pages at "full"): durable on
                # return. Modelled as a sync of the file, exact where LMDB uses it (the
                # data pages were fdatasynced just before).
                yield Event("sync", str(path))
    elif name == "pread64":
        path = _fd_path(args[0])
        if _below(path, under) and str(path).endswith("data.mdb") and int(args[3]) == 0:
            yield Event("snapshot", str(path), thread=pid)  # a checkpoint copying meta pages
    elif name == "lseek":
        seen.offsets[(pid, args[0].split("<")[0])] = result
    elif name in ("fsync", "fdatasync"):
        path = _fd_path(args[0])
        if _below(path, under):
            yield Event("sync", str(path))
    else:
        yield from _directory_event(name, args, result, pid, seen, under)


def _directory_event(
    name: str,
    args: list[str],
    result: int,
    pid: str,
    seen: _Seen,
    under: str,
) -> Iterator[Event]:
    if name == "ftruncate":
        path = _fd_path(args[0])
        if _below(path, under) and not str(path).endswith(LOCK_FILES):
            raise ValueError(f"ftruncate of {path} is not modelled")
    elif name == "openat":
        path = _path_arg(args[0], args[1])
        fd = str(result)
        seen.offsets[(pid, fd)] = 0
        if "O_DSYNC" in args[2] or "O_SYNC" in args[2]:
            seen.synchronous.add(fd)
        else:
            seen.synchronous.discard(fd)
        if _below(path, under) and "O_CREAT" in args[2]:
            yield Event("meta", path, op=("create", path))
    elif name in ("mkdir", "mkdirat"):
        path = _path_arg(args[0] if name == "mkdirat" else None, args[-2])
        if _below(path, under):
            yield Event("meta", path, op=("mkdir", path))
    elif name in ("rename", "renameat", "renameat2", "link", "linkat"):
        if name in ("rename", "link"):
            old, new = _path_arg(None, args[0]), _path_arg(None, args[1])
        else:
            old, new = _path_arg(args[0], args[1]), _path_arg(args[2], args[3])
        if _below(new, under):
            yield Event("meta", new, op=("link" if "link" in name else "rename", old, new))
    elif name in ("unlink", "unlinkat", "rmdir"):
        path = _path_arg(
            args[0] if name == "unlinkat" else None, args[1 if name == "unlinkat" else 0]
        )
        if _below(path, under):
            yield Event("meta", path, op=("unlink", path))


# -- replaying the record ----------------------------------------------------------------


@dataclasses.dataclass
class _Inode:
    directory: bool
    durable: bytearray = dataclasses.field(default_factory=bytearray)
    pending: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)


class _Disk:
    """The file system as the program sees it and as the disk holds it durably. Directory
    operations carry the inode they name, so that a replay finds the file's data."""

    def __init__(self, root: str) -> None:
        self.inodes: list[_Inode] = [_Inode(directory=True)]
        self.live: dict[str, int] = {root: 0}  # path -> inode, as the program sees it
        self.durable: dict[str, int] = {root: 0}  # path -> inode, on disk for sure
        self.pending_meta: list[tuple[str, ...]] = []  # directory operations not yet durable

    def apply(self, event: Event) -> None:
        if event.kind == "write":
            inode = self.live.get(event.path)
            if inode is not None:
                self.inodes[inode].pending.append((event.offset, event.data))
        elif event.kind == "sync":
            inode = self.live.get(event.path)
            if inode is None:
                return
            node = self.inodes[inode]
            if node.directory:
                # Its entries' operations are durable, and with them every earlier one (a
                # journal commits in order).
                last = max(
                    (i for i, op in enumerate(self.pending_meta) if _parent(op) == event.path),
                    default=-1,
                )
                for op in self.pending_meta[: last + 1]:
                    _namespace_apply(self.durable, op)
                del self.pending_meta[: last + 1]
            else:
                node.durable = _content(node.durable, node.pending, None)
                node.pending = []
        elif event.kind == "meta":
            op = event.op
            if op[0] in ("create", "mkdir"):
                if op[1] in self.live:
                    return  # O_CREAT on an existing file creates nothing
                self.inodes.append(_Inode(directory=op[0] == "mkdir"))
                op = (*op, str(len(self.inodes) - 1))
            _namespace_apply(self.live, op)
            self.pending_meta.append(op)

    def state(self, rng: random.Random, meta_first: bool) -> dict[str, bytes | None]:
        """One disk state a power loss now could leave: path -> content (None: a
        directory)."""
        namespace = dict(self.durable)
        kept = len(self.pending_meta) if meta_first else rng.randint(0, len(self.pending_meta))
        for op in self.pending_meta[:kept]:
            _namespace_apply(namespace, op)
        files: dict[str, bytes | None] = {}
        for path, inode in namespace.items():
            node = self.inodes[inode]
            if node.directory:
                files[path] = None
                continue
            choose: Chooser = (
                _meta_pages_only
                if meta_first and path.endswith("data.mdb")
                else _random_versions(rng)
            )
            files[path] = bytes(_content(node.durable, node.pending, choose))
        return files


def _parent(op: tuple[str, ...]) -> str:
    return os.path.dirname(op[2] if op[0] in ("rename", "link") else op[1])


def _namespace_apply(namespace: dict[str, int], op: tuple[str, ...]) -> None:
    """Apply one directory operation (with the inode it names) to ``namespace``."""
    kind = op[0]
    if kind in ("create", "mkdir"):
        namespace[op[1]] = int(op[2])
    elif kind == "rename":
        if op[1] in namespace:
            namespace[op[2]] = namespace.pop(op[1])
    elif kind == "link":
        if op[1] in namespace:
            namespace[op[2]] = namespace[op[1]]
    elif kind == "unlink":
        namespace.pop(op[1], None)


Chooser = Callable[[int, list[bytearray]], int]


def _content(
    base: bytearray, pending: list[tuple[int, bytes]], choose: Chooser | None
) -> bytearray:
    """``base`` with ``pending`` writes applied: all of them (``choose`` None), or page by
    page the version ``choose(page, versions)`` picks (0: the durable one)."""
    if choose is None:
        out = bytearray(base)
        for offset, data in pending:
            _put(out, offset, data)
        return out
    versions: dict[int, list[bytearray]] = {}
    current = bytearray(base)
    for offset, data in pending:
        touched = range(offset // PAGE, (offset + max(len(data), 1) - 1) // PAGE + 1)
        for page in touched:
            versions.setdefault(page, [bytearray(current[page * PAGE : (page + 1) * PAGE])])
        _put(current, offset, data)
        for page in touched:
            versions[page].append(bytearray(current[page * PAGE : (page + 1) * PAGE]))
    out = bytearray(base)
    for page, options in sorted(versions.items()):
        picked = options[choose(page, options)]
        if picked:
            _put(out, page * PAGE, bytes(picked))
    return out


def _put(out: bytearray, offset: int, data: bytes) -> None:
    if len(out) < offset + len(data):
        out.extend(bytes(offset + len(data) - len(out)))
    out[offset : offset + len(data)] = data


def _meta_pages_only(page: int, versions: list[bytearray]) -> int:
    return len(versions) - 1 if page < 2 else 0


def _random_versions(rng: random.Random) -> Chooser:
    def choose(_page: int, versions: list[bytearray]) -> int:
        return rng.randrange(len(versions))

    return choose


@dataclasses.dataclass
class CrashState:
    """What a power loss after event ``at`` could leave, and what must have survived."""

    at: int
    files: dict[str, bytes | None]
    promised: list[int]  # the acks the level promises
    adversarial: bool


def crash_states(
    events: list[Event], root: str, level: str, count: int, seed: int = 0, start: int = 0
) -> Iterator[CrashState]:
    """``count`` crash states of the record, at random points of it after its first
    ``start`` events; one in four is the adversarial "meta pages first" state. ``level``
    says which acks are promised: ``"full"`` every ack before the crash, ``"normal"`` every
    ack before the snapshot of the last durable checkpoint, ``"raw"`` every ack before the
    last ``fdatasync`` of ``data.mdb``."""
    rng = random.Random(seed)
    # Crash points spread over the record (several states at one point differ in which
    # pages and directory operations reached the disk).
    points = sorted(rng.choices(range(start + 1, len(events) + 1), k=count))
    disk = _Disk(os.path.realpath(root))
    acks: list[int] = []
    snapshot_acks: dict[str, int] = {}  # thread -> acks before its latest snapshot
    covered: dict[int, int] = {}  # checkpoint txnid -> acks before its snapshot
    synced_acks = 0
    done = 0
    for index, event in enumerate(events, start=1):
        if event.kind == "ack":
            acks.append(event.ack)
        elif event.kind == "snapshot":
            snapshot_acks[event.thread] = len(acks)
        elif event.kind == "sync" and event.path.endswith("data.mdb"):
            synced_acks = len(acks)
        elif event.kind == "write" and event.path.endswith(os.sep + CHECKPOINT_FILE):
            # A checkpoint's slot: it covers the acks before the snapshot its thread took
            # (a checkpoint copies the meta pages and writes its slot on one thread).
            saved = read_slot(event.data)
            if saved is not None:
                covered[saved.txnid] = snapshot_acks.get(event.thread, 0)
        disk.apply(event)
        while done < len(points) and points[done] == index:
            adversarial = done % 4 == 3
            files = disk.state(rng, meta_first=adversarial)
            if level == "full":
                promised = list(acks)
            elif level == "raw":
                promised = acks[:synced_acks]
            else:
                content = next(
                    (c for p, c in files.items() if p.endswith(os.sep + CHECKPOINT_FILE) and c),
                    None,
                )
                saved = None if content is None else read_checkpoint(content)
                promised = [] if saved is None else acks[: covered.get(saved.txnid, 0)]
            yield CrashState(index, files, promised, adversarial)
            done += 1


def materialise(state: CrashState, root: str, into: str) -> str:
    """Write the state's files below ``into``; the path that stands for ``root``."""
    real_root = os.path.realpath(root)
    target = os.path.join(into, "root")
    for path, content in sorted(state.files.items()):
        where = os.path.join(target, os.path.relpath(path, real_root))
        if content is None:
            os.makedirs(where, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(where), exist_ok=True)
            with open(where, "wb") as out:
                out.write(content)
    os.makedirs(target, exist_ok=True)
    return target


@dataclasses.dataclass
class Verdict:
    state: CrashState
    problems: list[str]


def check_states(
    states: Iterator[CrashState], root: str, checker: str, checker_args: list[str]
) -> Iterator[Verdict]:
    """Each state checked by ``python -c checker *checker_args``, which reads JSON lines
    ``{"path": ..., "promised": [...]}`` on stdin and answers each with a JSON list of
    problems. A checker that dies (a crash reading the state) fails that state and is
    started again."""
    process: subprocess.Popen[str] | None = None
    with tempfile.TemporaryDirectory(prefix="lmdbstore-crash-") as scratch:
        try:
            for number, state in enumerate(states):
                where = materialise(state, root, os.path.join(scratch, str(number)))
                if process is None or process.poll() is not None:
                    process = subprocess.Popen(
                        [sys.executable, "-c", checker, *checker_args],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                assert process.stdin is not None and process.stdout is not None
                try:
                    process.stdin.write(json.dumps({"path": where, "promised": state.promised}))
                    process.stdin.write("\n")
                    process.stdin.flush()
                    answer = process.stdout.readline()
                except BrokenPipeError:
                    answer = ""
                if answer:
                    problems = json.loads(answer)
                else:
                    process.wait()
                    problems = [f"the checker died opening the state ({process.returncode})"]
                    process = None
                yield Verdict(state, problems)
                shutil.rmtree(os.path.join(scratch, str(number)), ignore_errors=True)
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
