"""``mera-mm check-dataset``: validate a dataset in the MERA format before upload.

Modules, one job each: ``layout`` reads a dataset folder (source or hub layout) into plain
records; ``records`` checks fields, placeholders, ids, shots and golds; ``balance`` checks the
spread of answer letters; ``media`` checks every media file with the project's media layer and
``imagehash``/``scipy``; ``report`` collects findings and prints them. ``run.check_dataset`` ties
them together.
"""
