"""MIME sniffing from the first bytes of a file: never assume a format from a name."""

from __future__ import annotations

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "audio/wav": "wav",
    "audio/flac": "flac",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "video/x-msvideo": "avi",
}


def sniff_mime(data: bytes) -> str | None:
    """Return the MIME type that the bytes' signature shows, or None when unknown.

    Images are recognised here; audio and video by the sniffers of their own modules, so each
    format has one definition.
    """
    from lm_eval_patches.media.audio import sniff_audio_mime
    from lm_eval_patches.media.video import sniff_video_mime

    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in (b"M4A ", b"M4B "):
        return "audio/mp4"  # an MP4 container holding audio only
    return sniff_video_mime(data) or sniff_audio_mime(data)


def extension_for(mime: str | None) -> str:
    """File extension for a MIME type ("bin" when unknown)."""
    return _EXTENSIONS.get(mime or "", "bin")
