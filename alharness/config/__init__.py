"""The config edge: Hydra composition, the schema every composed config is checked
against, and the one-line messages of what is wrong. The rooms below receive what this
package has validated (`alharness.config.schema.RunConfig`)."""
