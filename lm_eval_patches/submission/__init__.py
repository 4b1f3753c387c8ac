"""The MERA submission archive: find lm-eval's logs, pack them as the MERA site takes them, and
validate an archive (ours or anyone's) before it is uploaded.

Modules, one job each: ``table`` (the 18 datasets: file names, source tasks, hub ids), ``logs``
(locate the logs folder and the newest samples log per task), ``samples`` (answers from a samples
log), ``codes`` (stable problem codes), ``safezip`` (reading untrusted zips), ``expected``
(test ids from the data), ``validate`` and ``pack``.
"""
