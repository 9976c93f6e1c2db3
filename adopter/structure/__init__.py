"""The paper's model-structure abstraction (SPEC section 1), on the standard ``ast`` tree."""

from .graph import Const, Flow, Node, Ref, Value
from .model import ClassStructure, ModuleStructure, module_structure
from .names import names_match, package_of

__all__ = [
    "ClassStructure", "Const", "Flow", "ModuleStructure", "Node", "Ref", "Value",
    "module_structure", "names_match", "package_of",
]
