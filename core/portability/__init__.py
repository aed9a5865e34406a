"""Portability of Sigma rules across query languages, and the attacks a rule lets through.

- ``explain``: why a rule matches an event or not, per selection and per value.
- ``corpus``: events generated from a rule's values, with the near misses that trip translations.
- ``report``: the evaluator against every target's emulator, as a matrix with classified divergences.
- ``render`` and ``html``: the report as text, Markdown, JSON or a self-contained HTML page.
- ``gaps``: real-world LSASS dump variants that a rule misses, each with the reason.
- ``cli``: the ``portability``, ``explain`` and ``gaps`` commands.

Importing this package loads none of its modules.
"""
