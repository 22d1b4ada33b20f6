"""`python -m simcse_lab.pretrain ...`: the same flags as `simcse-lab pretrain`."""

import argparse
import json
from dataclasses import asdict

from . import add_pretrain_arguments, config_from_args, pretrain

parser = add_pretrain_arguments(argparse.ArgumentParser(prog="python -m simcse_lab.pretrain", description=pretrain.__doc__.splitlines()[0]))
result = pretrain(config_from_args(parser.parse_args()))
print(json.dumps({k: v for k, v in asdict(result).items() if k != "loss_curve"}, indent=1))
