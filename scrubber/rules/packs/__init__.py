"""The built-in rule packs: every module here is a pack, imported by the registry.

A pack is one module of ``@rule`` functions (scrubber.rules.registry): add a file
here and its rules are listed, documented and run; nothing else to register.
"""
