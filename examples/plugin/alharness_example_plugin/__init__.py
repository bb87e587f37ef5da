"""An example alharness plugin (see pyproject.toml for how alharness finds its parts)."""
