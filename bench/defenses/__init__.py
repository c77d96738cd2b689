"""Built-in defenses, one module per defense or family.

Nothing is imported here: ``bench.registry.BUILTIN_DEFENSES`` names each
built-in with its module, which is imported (and registers the defense) on
the first lookup, so listing defenses never loads torch.
"""
