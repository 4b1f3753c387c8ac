"""Audio decoding, resampling, encoding and sniffing on media written by real encoders."""

from __future__ import annotations

import pickle

import media_samples as ms
import numpy as np
import pytest

from lm_eval_patches.media import audio
from lm_eval_patches.media.audio import (
    audio_duration,
    decode_audio,
    encode_wav,
    sniff_audio_mime,
)
from lm_eval_patches.media.errors import MediaError


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


def _amplitude(samples: np.ndarray) -> float:
    core = samples[samples.size // 10 : -samples.size // 10]  # ignore filter edges
    return float(np.sqrt(np.mean(core.astype(np.float64) ** 2)) * np.sqrt(2))


def _backends() -> list:
    params = []
    for name, module in (("soxr", "soxr"), ("scipy", "scipy.signal"), ("numpy", "numpy")):
        try:
            __import__(module)
            marks = ()
        except ImportError:
            marks = pytest.mark.skip(reason=f"{module} not installed")
        params.append(pytest.param(name, marks=marks))
    return params


# -- resampling ---------------------------------------------------------------------------


def test_resampled_tone_keeps_frequency_and_amplitude():
    samples, rate = decode_audio(ms.make_tone_wav(1000, 44100, 1.0), target_rate=16000)
    assert rate == 16000
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - 16000) <= 1
    assert abs(_peak_hz(samples, rate) - 1000) <= 5
    assert _amplitude(samples) == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize("backend", _backends())
def test_each_resampler_is_band_limited(backend):
    rate = 44100
    passband = ms.tone(1000, rate, 1.0, amplitude=0.8)[0]
    out = audio._resample(passband, rate, 16000, backend)
    assert out.dtype == np.float32 and abs(out.size - 16000) <= 1
    assert abs(_peak_hz(out, 16000) - 1000) <= 5
    assert _amplitude(out) == pytest.approx(0.8, rel=0.02)
    # 12 kHz is above the new Nyquist limit (8 kHz): it must vanish, not alias to 4 kHz.
    above = audio._resample(ms.tone(12000, rate, 1.0, amplitude=0.8)[0], rate, 16000, backend)
    assert _amplitude(above) < 0.01


@pytest.mark.parametrize("backend", _backends())
def test_resampler_keeps_channels_apart(backend):
    stereo = np.stack([ms.tone(440, 48000, 0.5)[0], np.zeros(24000, np.float32)])
    out = audio._resample(stereo, 48000, 16000, backend)
    assert out.shape == (2, 8000)
    assert _amplitude(out[0]) == pytest.approx(0.5, rel=0.02)
    assert np.abs(out[1]).max() < 1e-6


def test_upsampling():
    samples, rate = decode_audio(ms.make_tone_wav(440, 8000, 1.0), target_rate=16000)
    assert rate == 16000 and abs(samples.size - 16000) <= 1
    assert abs(_peak_hz(samples, rate) - 440) <= 5


# -- channels and formats -----------------------------------------------------------------


def test_stereo_downmix_averages_channels():
    left = ms.tone(440, 16000, 1.0, amplitude=0.5)[0]
    stereo = np.stack([left, np.zeros_like(left)])
    data = ms.write_audio(stereo, 16000, "wav", "FLOAT")
    mono, rate = decode_audio(data)
    assert rate == 16000 and mono.shape == (16000,)
    np.testing.assert_allclose(mono, left / 2, atol=1e-7)
    both, _ = decode_audio(data, mono=False)
    assert both.shape == (2, 16000)
    np.testing.assert_allclose(both[0], left, atol=1e-7)
    assert np.all(both[1] == 0)


FORMATS = ["wav", "flac", "ogg", "mp3", "m4a"]
MIMES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes(fmt):
    data = ms.write_audio(ms.tone(1000, 44100, 1.0, channels=2), 44100, fmt)
    assert sniff_audio_mime(data) == MIMES.get(fmt)
    samples, rate = decode_audio(data, target_rate=16000)
    assert rate == 16000
    assert abs(samples.size - 16000) < 1200  # lossy codecs add a little priming/padding
    assert abs(_peak_hz(samples, rate) - 1000) <= 5
    assert np.abs(samples).max() <= 1.0
    assert audio_duration(data) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_pyav_fallback_decodes_when_libsndfile_cannot(fmt, monkeypatch):
    def refuse(data):
        raise RuntimeError("Format not recognised")

    monkeypatch.setattr(audio, "_decode_soundfile", refuse)
    samples, rate = decode_audio(ms.write_audio(ms.tone(1000, 22050, 1.0), 22050, fmt))
    assert rate == 22050
    assert abs(_peak_hz(samples, rate) - 1000) <= 5


@pytest.mark.parametrize(
    "make", [ms.make_tone_wav, ms.make_noise_wav, ms.make_speechlike_wav], ids=lambda f: f.__name__
)
def test_generated_wavs_round_trip(make):
    args = (1000, 16000, 0.5) if make is ms.make_tone_wav else (16000, 0.5)
    samples, rate = decode_audio(make(*args))
    assert rate == 16000 and samples.size == 8000
    assert 0.01 < np.abs(samples).max() <= 1.0


# -- errors -------------------------------------------------------------------------------


def test_empty_bytes():
    with pytest.raises(MediaError, match="empty"):
        decode_audio(b"")


def test_zero_length_audio():
    data = ms.write_audio(np.zeros((1, 0), np.float32), 16000, "wav")
    with pytest.raises(MediaError, match="no samples") as info:
        decode_audio(data)
    assert info.value.kind == "audio"
    assert audio_duration(data) == 0.0


def test_truncated_wav_data_is_reported():
    data = ms.truncate(ms.make_tone_wav(440, 16000, 1.0), 0.5)
    with pytest.raises(MediaError, match="truncated") as info:
        decode_audio(data)
    assert "16000 frames" in info.value.detail


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_cut_inside_header_is_an_error(fmt):
    data = ms.write_audio(ms.tone(440, 16000, 1.0), 16000, fmt)
    with pytest.raises(MediaError):
        decode_audio(data[:20])


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_truncated_compressed_audio_is_an_error(fmt):
    data = ms.truncate(ms.write_audio(ms.tone(440, 16000, 2.0), 16000, fmt), 0.5)
    with pytest.raises(MediaError):
        decode_audio(data)


def test_garbage_names_both_decoders():
    with pytest.raises(MediaError) as info:
        decode_audio(ms.garbage())
    assert "soundfile" in info.value.detail and "pyav" in info.value.detail
    assert str(info.value).startswith("cannot decode audio (")
    with pytest.raises(MediaError):
        audio_duration(ms.garbage())


def test_video_only_container_has_no_audio():
    with pytest.raises(MediaError, match="no audio stream"):
        decode_audio(ms.make_counter_video(0.5, 10, 64, 48, "mp4"))


def test_media_error_context_and_pickling():
    err = MediaError("audio", "bad header").with_context("field inputs.audio")
    err.with_context("task ruenvaqa, doc 12")
    assert str(err) == "task ruenvaqa, doc 12, field inputs.audio: cannot decode audio (bad header)"
    assert isinstance(err, ValueError)
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.kind, clone.detail, clone.where) == (err.kind, err.detail, err.where)
    assert str(MediaError("audio", "x", action="encode")) == "cannot encode audio (x)"


# -- encoding, duration, sniffing -----------------------------------------------------------


def test_float_wav_round_trip_does_not_clip():
    samples = np.array([[0.0, 0.999, -0.999, 1.0, -1.0, 1.5, -1.5, 0.25]], np.float32)
    data = encode_wav(samples[0], 16000)
    assert sniff_audio_mime(data) == "audio/wav"
    back, rate = decode_audio(data)
    assert rate == 16000
    np.testing.assert_array_equal(back, samples[0])  # bit-exact, over-range values intact
    stereo = np.concatenate([samples, -samples])
    back2, _ = decode_audio(encode_wav(stereo, 16000), mono=False)
    np.testing.assert_array_equal(back2, stereo)


def test_pcm24_wav_clips_instead_of_wrapping():
    samples = np.array([0.5, 0.999, 1.5, -1.5], np.float32)
    back, _ = decode_audio(encode_wav(samples, 8000, "PCM_24"))
    np.testing.assert_allclose(back, [0.5, 0.999, 1.0, -1.0], atol=2e-7)


def test_encode_rejects_non_finite():
    with pytest.raises(MediaError, match="NaN"):
        encode_wav(np.array([0.0, np.nan], np.float32), 8000)


@pytest.mark.parametrize(
    ("fmt", "tol"), [("wav", 1e-9), ("flac", 1e-9), ("ogg", 0.01), ("mp3", 0.05), ("m4a", 0.05)]
)
def test_duration(fmt, tol):
    data = ms.write_audio(ms.tone(440, 22050, 2.5), 22050, fmt)
    assert audio_duration(data) == pytest.approx(2.5, abs=tol)


def test_sniff_audio_mime_edge_cases():
    frame_sync_mp3 = ms.make_mp3(ms.tone(440, 16000, 0.2), 16000)
    id3 = frame_sync_mp3.startswith(b"ID3")
    # Strip a leading ID3 tag, if any, to exercise raw MPEG frame-sync detection.
    if id3:
        size = sum(b << (7 * (3 - i)) for i, b in enumerate(frame_sync_mp3[6:10])) + 10
        frame_sync_mp3 = frame_sync_mp3[size:]
    assert sniff_audio_mime(frame_sync_mp3) == "audio/mpeg"
    assert sniff_audio_mime(b"\xff\xf1\x50\x80\x00\x1f\xfc") is None  # ADTS AAC, not MP3
    assert sniff_audio_mime(b"") is None
    assert sniff_audio_mime(ms.garbage(64, seed=3)) is None
    assert sniff_audio_mime(ms.make_audio_only_mp4()) is None
