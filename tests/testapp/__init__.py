"""Test-only models: a proxy and a multi-table child of the example shop's Order and
OrderItem, a trigger whose order is optional, and a model unrelated to orders."""
