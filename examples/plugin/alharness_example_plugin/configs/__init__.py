"""Config groups this plugin adds; Hydra reads the YAML files beside this file."""
