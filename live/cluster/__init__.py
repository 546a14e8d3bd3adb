"""Many identical nodes behind one Redis: stream leases, the command bus between
nodes, the node registry, and answering viewers of a stream another node owns."""
