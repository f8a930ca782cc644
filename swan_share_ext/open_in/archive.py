"""Zip archives brought by a link: checked whole before a single file is taken out of them.

This module owns the rules for archive members: names that cannot leave the project folder
(no absolute names, no ``..``, no links), and limits on entries, unpacked bytes and compression
ratio, with every member read once before anything is written. It must not write files: it
hands member bytes to the caller, which writes them through the contents manager.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass

from .safety import BadLink, OpenRefused, TooLarge

_RATIO_FLOOR = 1024 * 1024


def is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def member_path(name: str) -> str:
    """The relative path of an archive member; `OpenRefused` for one that would leave its
    folder."""
    if "\x00" in name:
        raise OpenRefused(
            f"The archive holds a name with a NUL byte ({name!r}); nothing was written."
        )
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        raise OpenRefused(
            f"The archive holds an absolute path ({name}), which could overwrite files "
            "outside its folder; nothing was written."
        )
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise OpenRefused(
            f"The archive holds a path that climbs out of its folder ({name}); nothing was written."
        )
    return "/".join(parts)


def _hidden(path: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in path.split("/"))


@dataclass(frozen=True)
class Member:
    path: str
    info: zipfile.ZipInfo


class SafeZip:
    """An archive whose member names, sizes and checksums were all checked on construction."""

    def __init__(
        self, data: bytes, *, max_files: int, max_unpacked_bytes: int, max_ratio: int
    ) -> None:
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, ValueError) as e:
            raise BadLink(f"The file is not a readable zip archive ({e}).") from e
        if len(infos) > max_files:
            raise TooLarge(
                f"The archive holds {len(infos)} entries, more than the {max_files} allowed; "
                "nothing was written."
            )
        members: list[Member] = []
        self.skipped: list[str] = []
        declared = 0
        for info in infos:
            path = member_path(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise OpenRefused(
                    f"The archive holds a symbolic link ({info.filename}), which could point "
                    "outside its folder; nothing was written."
                )
            if info.flag_bits & 0x1:
                raise OpenRefused(
                    f"The archive is encrypted ({info.filename}); it cannot be opened."
                )
            if info.is_dir() or not path:
                continue
            if (
                info.file_size > _RATIO_FLOOR
                and info.file_size > max(info.compress_size, 1) * max_ratio
            ):
                raise TooLarge(
                    f"{info.filename} unpacks {info.file_size // max(info.compress_size, 1)} "
                    f"times larger than it is packed (a zip bomb?); nothing was written."
                )
            declared += info.file_size
            if _hidden(path):
                self.skipped.append(path)
                continue
            members.append(Member(path, info))
        if declared > max_unpacked_bytes:
            raise TooLarge(
                f"The archive unpacks to {declared} bytes, more than the {max_unpacked_bytes} "
                "allowed; nothing was written."
            )
        # Read every member once before anything is written: a damaged member or one that
        # unpacks to other sizes than declared fails here, not halfway through the writing.
        # Reading stops at each declared size, so the budget checked above holds.
        try:
            damaged = self._zip.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
            raise BadLink(f"The archive cannot be unpacked ({e}); nothing was written.") from e
        if damaged is not None:
            raise BadLink(f"{damaged} in the archive is damaged; nothing was written.")
        self.members = _strip_common_folder(members)

    def read(self, member: Member) -> bytes:
        """The bytes of one member (already verified by the constructor)."""
        return self._zip.read(member.info)


def _strip_common_folder(members: list[Member]) -> list[Member]:
    """Drop one folder that holds everything (``repo-main/`` of a forge's download)."""
    tops = {m.path.split("/", 1)[0] for m in members}
    if len(tops) == 1 and all("/" in m.path for m in members):
        return [Member(m.path.split("/", 1)[1], m.info) for m in members]
    return members
