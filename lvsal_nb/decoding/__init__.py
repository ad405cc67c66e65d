"""Decoding: the own KV-cache loop (step engine, SGRS), sampling rules, SGRS policy, LocoRE."""
