"""Line layout of the code a rewrite writes: keep the original's shape, respect line length.

A rewrite renders its new call as one line of text.  Put back as is, a call that spanned six
lines with a comment on each argument becomes one long line and its comments move away; a
reviewer then reads a reformatting instead of a change.  So the new call is laid out like
the code it replaces, on LibCST nodes (whitespace nodes, never string surgery):

* the original call spanned several lines: the new one does too, in the same style: one
  argument a line with a trailing comma when the original had one argument a line (or a
  trailing comma, or comments beside its arguments), else Black's "hanging" form (the
  arguments together on one indented line, the closing bracket on its own line) when that
  line fits; a comment that was beside an argument the new call still passes stays beside
  it, one beside the opening bracket stays there;
* the original was one line and the new one is longer than the limit (:mod:`.style`): the
  hanging form if it fits, one argument a line with a trailing comma otherwise (Black's
  right-hand split and its fallback);
* a new ``if`` whose test is too long gets the test in parentheses, one operand of its
  ``and``/``or`` a line, as Black writes it.

Why not run Black on the new statement: it would re-format the whole statement by its own
rules (quotes, spacing, parentheses, the user's other line breaks), which is the kind of noise
this module exists to avoid, and it cannot carry the original's comments to the new argument
they belong to.
"""

from __future__ import annotations

import libcst as cst

from .style import Style

EMPTY = cst.Module(body=[])
PUNCTUATION = " \t,+-*/@()[]{}\\"


def code(node: cst.CSTNode) -> str:
    return EMPTY.code_for_node(node)


def _newline(indent: str, comment: cst.Comment | None = None) -> cst.ParenthesizedWhitespace:
    """A line break inside brackets, the next line indented ``indent`` past the block."""
    first = cst.TrailingWhitespace(
        whitespace=cst.SimpleWhitespace("  " if comment is not None else ""), comment=comment,
    )
    return cst.ParenthesizedWhitespace(first_line=first, empty_lines=[], indent=True,
                                       last_line=cst.SimpleWhitespace(indent))


def vertical(call: cst.Call, inner: str, outer: str, beside: dict[int, cst.Comment] | None = None,
             opening: cst.Comment | None = None) -> cst.Call:
    """One argument a line, indented ``inner`` (past the block), a trailing comma, the closing
    bracket at ``outer``; ``beside[i]`` is the comment written after argument ``i``."""
    beside = beside or {}
    args = list(call.args)
    laid = []
    for i, arg in enumerate(args):
        last = i == len(args) - 1
        comma = cst.Comma(whitespace_before=cst.SimpleWhitespace(""),
                          whitespace_after=_newline(outer if last else inner, beside.get(i)))
        laid.append(arg.with_changes(comma=comma, whitespace_after_arg=cst.SimpleWhitespace("")))
    return call.with_changes(args=laid, whitespace_before_args=_newline(inner, opening))


def hanging(call: cst.Call, inner: str, outer: str, opening: cst.Comment | None = None) -> cst.Call:
    """``f(\\n    a, b, c\\n)``: Black's right-hand split."""
    args = list(call.args)
    laid = []
    for i, arg in enumerate(args):
        if i < len(args) - 1:
            laid.append(arg.with_changes(
                comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
                whitespace_after_arg=cst.SimpleWhitespace("")))
        else:
            laid.append(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=_newline(outer)))
    return call.with_changes(args=laid, whitespace_before_args=_newline(inner, opening))


def _one_line(call: cst.Call) -> str:
    """The arguments of ``call`` on one line, as the hanging form writes them."""
    parts = []
    for arg in call.args:
        parts.append(code(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT,
                                           whitespace_after_arg=cst.SimpleWhitespace(""))).strip())
    return ", ".join(parts)


def original_style(node: cst.CSTNode) -> str:
    """``"vertical"`` or ``"hanging"``: how a multi-line original laid out its arguments."""
    if isinstance(node, cst.Call) and node.args:
        args = list(node.args)
        between = [a.comma for a in args[:-1] if isinstance(a.comma, cst.Comma)]
        if any(isinstance(c.whitespace_after, cst.ParenthesizedWhitespace) for c in between):
            return "vertical"
        if isinstance(args[-1].comma, cst.Comma):
            return "vertical"  # the magic trailing comma
        return "hanging"
    return "vertical"


def _arg_texts(call: cst.Call) -> list[str]:
    texts = []
    for arg in call.args:
        bare = arg.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=cst.SimpleWhitespace(""))
        texts.append(" ".join(code(bare).split()))
    return texts


def place_comments(original: cst.CSTNode, new: cst.Call, comments: list[cst.Comment]):
    """Which argument of ``new`` each comment of ``original`` was beside: returns
    ``(beside, opening, unplaced)``.  A comment belongs to the argument whose code is what
    its line of the original held (``hidden_states,  # dropped out``)."""
    lines = code(original).split("\n")
    args = [" ".join(t.split()) for t in _arg_texts(new)]
    values = [" ".join(code(a.value).split()) for a in new.args]
    beside: dict[int, cst.Comment] = {}
    opening = None
    unplaced = []
    used_lines: set[int] = set()
    for comment in comments:
        number = next((i for i, line in enumerate(lines) if comment.value in line and i not in used_lines), None)
        if number is None:
            unplaced.append(comment)
            continue
        used_lines.add(number)
        before = lines[number][: lines[number].index(comment.value)]
        held = " ".join(before.strip(PUNCTUATION).split())
        target = None
        if number == 0 and before.rstrip().endswith("(") and opening is None:
            opening = comment  # beside the opening bracket: it stays there
            continue
        if held:
            for i, (whole, value) in enumerate(zip(args, values)):
                if i not in beside and held in (whole, value):
                    target = i
                    break
        if target is not None:
            beside[target] = comment
        else:
            unplaced.append(comment)
    return beside, opening, unplaced


def _chain(expr: cst.BaseExpression) -> list[cst.Call]:
    """The calls of a method chain, outermost first: ``a(x).b(y).c(z)`` gives c, b, a."""
    calls = []
    node = expr
    while True:
        if isinstance(node, cst.Call):
            if node.args:
                calls.append(node)
            node = node.func
        elif isinstance(node, (cst.Attribute, cst.Subscript)) and not node.lpar:
            node = node.value
        else:
            return calls


def _lines(expr: cst.CSTNode, head: int, block: int, tail: int) -> list[int]:
    """Absolute lengths of the lines ``expr`` takes when it starts at column ``head`` of a
    line in a block indented ``block``, with ``tail`` characters after it on its last line."""
    parts = code(expr).split("\n")
    lengths = [block + len(part) for part in parts]
    lengths[0] = head + len(parts[0])
    lengths[-1] += tail
    return lengths


def _fits(lengths: list[int], limit: int) -> bool:
    return max(lengths) <= limit


def wrap_call(call: cst.Call, block: int, depth: str, unit: str, limit: int, style: str | None = None,
              beside: dict | None = None, opening: cst.Comment | None = None) -> cst.Call:
    """``call``'s arguments wrapped: hanging when the one argument line fits, else one a line
    (and then an argument that is itself too long gets the same treatment one level in)."""
    inner, outer = depth + unit, depth
    if style is None:
        style = "hanging" if block + len(inner) + len(_one_line(call)) <= limit else "vertical"
    if beside:
        style = "vertical"
    if style == "hanging":
        return hanging(call, inner, outer, opening)
    laid = vertical(call, inner, outer, beside, opening)
    args = list(laid.args)
    for i, arg in enumerate(args):
        value = arg.value
        lead = code(arg.with_changes(value=cst.Name("x"), comma=cst.MaybeSentinel.DEFAULT,
                                     whitespace_after_arg=cst.SimpleWhitespace("")))[:-1]
        head = block + len(inner) + len(lead)
        if "\n" in code(value) or _fits(_lines(value, head, block, 1), limit):
            continue
        args[i] = arg.with_changes(value=wrap_value(value, head, block, inner, unit, limit, tail=1))
    return laid.with_changes(args=args)


def wrap_value(value: cst.BaseExpression, head: int, block: int, depth: str, unit: str, limit: int,
               tail: int = 0) -> cst.BaseExpression:
    """A value too long for its line, wrapped as Black does: a call chain by its brackets, a
    conditional expression in parentheses with ``if`` and ``else`` starting their lines."""
    if isinstance(value, cst.IfExp) and value.lpar and len(value.lpar) == 1 and "\n" not in code(value) \
            and "#" not in code(value):
        # ``(a if c else b)`` already in parentheses (a mask the fix wrote): split inside them
        value = value.with_changes(lpar=[], rpar=[])
    if isinstance(value, cst.IfExp) and not value.lpar:
        inner = depth + unit
        body, orelse = value.body, value.orelse
        if not _fits(_lines(body, block + len(inner), block, 0), limit):
            body = wrap_value(body, block + len(inner), block, inner, unit, limit)
        if not _fits(_lines(orelse, block + len(inner) + len("else "), block, 0), limit):
            orelse = wrap_value(orelse, block + len(inner) + len("else "), block, inner, unit, limit)
        return value.with_changes(
            body=body, orelse=orelse,
            whitespace_before_if=_newline(inner), whitespace_after_if=cst.SimpleWhitespace(" "),
            whitespace_before_else=_newline(inner), whitespace_after_else=cst.SimpleWhitespace(" "),
            lpar=[cst.LeftParen(whitespace_after=_newline(inner))],
            rpar=[cst.RightParen(whitespace_before=_newline(depth))],
        )
    if isinstance(value, cst.BinaryOperation) and not value.lpar and head == block + len(depth) \
            and "#" not in code(value):
        # ``bias + mask.expand(...).reshape(...)`` starting its own line inside brackets:
        # broken before each operator of its loosest level, then a call chain still too
        # long wrapped at its brackets (Black's delimiter split, then its right-hand split)
        split = _split_binary(value, depth, limit - block - len(depth))
        return _wrap_operands(split, block, depth, unit, limit, tail)
    return wrap_chain(value, head, block, depth, unit, limit, tail)


def _wrap_operands(node: cst.BaseExpression, block: int, depth: str, unit: str, limit: int, tail: int,
                   lead: int = 0) -> cst.BaseExpression:
    """The operands of a split operation (:func:`_split_binary`, each on a line of its own at
    ``depth`` after its operator) with each call chain still too long for its line wrapped."""
    if isinstance(node, cst.BinaryOperation) and not node.lpar and "\n" in code(node.operator):
        left = _wrap_operands(node.left, block, depth, unit, limit, 0, lead)
        right = _wrap_operands(node.right, block, depth, unit, limit, tail, len(code(node.operator).strip()) + 1)
        return node.with_changes(left=left, right=right)
    head = block + len(depth) + lead
    if "\n" in code(node) or _fits(_lines(node, head, block, tail), limit):
        return node
    return wrap_chain(node, head, block, depth, unit, limit, tail)


def wrap_chain(expr: cst.BaseExpression, head: int, block: int, depth: str, unit: str, limit: int,
               tail: int = 0, style: str | None = None, beside: dict | None = None,
               opening: cst.Comment | None = None) -> cst.BaseExpression:
    """``expr`` (starting at column ``head``) with one call of its method chain wrapped: the
    last one whose wrapping makes every line fit (Black's right-hand split, omitting the
    trailers it must), else the outermost."""
    calls = _chain(expr)
    if not calls:
        return expr
    first = None
    for call in calls:
        laid = wrap_call(call, block, depth, unit, limit, style, beside, opening)
        candidate = expr.deep_replace(call, laid) if call is not expr else laid
        if first is None:
            first = candidate
        if _fits(_lines(candidate, head, block, tail), limit):
            return candidate
        if style is not None or beside or opening is not None:
            break  # the original's own call keeps the layout it had
    return first


def lay_out_call(new: cst.BaseExpression, original: cst.CSTNode | None, comments: list[cst.Comment],
                 first_line: str, last_line: str, depth: str, unit: str, limit: int | None):
    """Lay out the new expression ``new`` that replaces ``original``; returns
    ``(expression, comments it could not keep beside their code)``.

    ``first_line``/``last_line`` are the text of the original's line before it and after it,
    ``depth`` the indentation of its first line past the block's, ``unit`` one indentation
    step, ``limit`` the longest line allowed (None: no limit).
    """
    if not isinstance(new, cst.Call) or not _chain(new):
        return new, comments
    multiline = original is not None and "\n" in code(original)
    block = len(first_line) - len(first_line.lstrip(" \t")) - len(depth)
    head, tail = len(first_line), len(last_line)
    too_long = limit is not None and not _fits(_lines(new, head, block, tail), limit)
    beside, opening, unplaced = place_comments(original, new, comments) if comments and original is not None and \
        isinstance(new, cst.Call) and new.args else ({}, None, list(comments))
    if not multiline and not too_long and not beside and opening is None:
        return new, comments
    if multiline or beside or opening is not None:
        if not new.args:
            return new, comments
        # The new call is laid out as the original was: its own arguments are split.
        style = original_style(original) if multiline else "vertical"
        if style == "hanging" and limit is not None and block + len(depth + unit) + len(_one_line(new)) > limit:
            style = "vertical"
        return wrap_call(new, block, depth, unit, limit if limit is not None else 10**6, style, beside, opening), unplaced
    return wrap_chain(new, head, block, depth, unit, limit, tail), unplaced


# ----------------------------------------------------------------------------- statements


def _split_boolean(node: cst.BooleanOperation, inner: str, unit: str, block: int, limit: int) -> cst.BooleanOperation:
    """``a or b or c`` with a line break before each ``or`` (the left spine of one operator),
    and an operand that is a parenthesised ``and``/``or`` still too long split inside its
    parentheses one level in."""
    kind = type(node.operator)

    def operand(value: cst.BaseExpression, lead: int) -> cst.BaseExpression:
        if block + len(inner) + lead + len(code(value)) > limit:
            if isinstance(value, cst.Comparison) and not value.lpar and "\n" not in code(value):
                # ``and mask.amax(-1).min() <= torch.finfo(mask.dtype).min / 2``: inside the
                # test's parentheses Black breaks before each comparison operator, same indent
                return value.with_changes(comparisons=[
                    target.with_changes(operator=target.operator.with_changes(
                        whitespace_before=_newline(inner)))
                    for target in value.comparisons
                ])
            return _split_parenthesised(value, inner, unit, block, limit)
        return value

    left = node.left
    if isinstance(left, cst.BooleanOperation) and isinstance(left.operator, kind) and not left.lpar:
        left = _split_boolean(left, inner, unit, block, limit)
    else:
        left = operand(left, 0)
    right = operand(node.right, len(code(node.operator).strip()) + 1)
    operator = node.operator.with_changes(whitespace_before=_newline(inner),
                                          whitespace_after=cst.SimpleWhitespace(" "))
    return node.with_changes(left=left, operator=operator, right=right)


def _split_parenthesised(value: cst.BaseExpression, inner: str, unit: str, block: int,
                         limit: int) -> cst.BaseExpression:
    """A parenthesised ``and``/``or``, or conditional expression, on one line, split inside
    its parentheses one level in from ``inner`` (as Black does: ``if`` and ``else`` start their
    lines, and a parenthesised ``and``/``or`` after ``else`` is split in turn)."""
    if not value.lpar or "\n" in code(value):
        return value
    deeper = inner + unit
    if isinstance(value, cst.BooleanOperation):
        split = _split_boolean(value.with_changes(lpar=[], rpar=[]), deeper, unit, block, limit)
    elif isinstance(value, cst.IfExp):
        orelse = value.orelse
        if block + len(deeper) + len("else ") + len(code(orelse)) > limit:
            orelse = _split_parenthesised(orelse, deeper, unit, block, limit)
        split = value.with_changes(
            orelse=orelse, lpar=[], rpar=[],
            whitespace_before_if=_newline(deeper), whitespace_after_if=cst.SimpleWhitespace(" "),
            whitespace_before_else=_newline(deeper), whitespace_after_else=cst.SimpleWhitespace(" "),
        )
    else:
        return value
    return split.with_changes(lpar=[cst.LeftParen(whitespace_after=_newline(deeper))],
                              rpar=[cst.RightParen(whitespace_before=_newline(inner))])


def fit_if(node: cst.If, block_indent: int, unit: str, limit: int | None) -> cst.If:
    """``if <long test>:`` as ``if (\n    a\n    or b\n):`` when the line is too long."""
    if limit is None:
        return node
    test = node.test
    header = block_indent + len("if ") + len(code(test)) + 1
    if header <= limit or "\n" in code(test):
        return node
    if isinstance(test, cst.IfExp) and test.lpar:  # one conditional expression: split it
        return node.with_changes(test=_split_parenthesised(test, "", unit, block_indent, limit),
                                 whitespace_before_test=cst.SimpleWhitespace(" "))
    if not isinstance(test, cst.BooleanOperation):
        return node
    if test.lpar:  # already parenthesised: break inside those parentheses
        test = test.with_changes(lpar=[], rpar=[])
    split = _split_boolean(test, unit, unit, block_indent, limit)
    split = split.with_changes(
        lpar=[cst.LeftParen(whitespace_after=_newline(unit))],
        rpar=[cst.RightParen(whitespace_before=_newline(""))],
    )
    return node.with_changes(test=split, whitespace_before_test=cst.SimpleWhitespace(" "))


_ADDITIVE = (cst.Add, cst.Subtract)
_MULTIPLICATIVE = (cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.MatrixMultiply)


def _split_binary(node: cst.BinaryOperation, indent: str, room: int) -> cst.BinaryOperation:
    """``a + b - c`` with a line break before each operator of its loosest-binding level (the
    left spine of that level: ``a * s + m`` breaks before ``+`` only), the next line indented
    ``indent`` past the block: Black's split inside the brackets it opens.  An operand still
    longer than ``room`` that is itself such an operation is split the same way, at the same
    indentation (``a.view(...)`` / ``* self.scale`` / ``+ mask``)."""
    level = next((ops for ops in (_ADDITIVE, _MULTIPLICATIVE) if isinstance(node.operator, ops)), None)
    if level is None:
        level = (type(node.operator),)

    def operand(part: cst.BaseExpression, lead: int) -> cst.BaseExpression:
        if isinstance(part, cst.BinaryOperation) and not part.lpar and lead + len(code(part)) > room:
            return _split_binary(part, indent, room)
        return part

    def split(part: cst.BaseExpression) -> cst.BaseExpression:
        if not (isinstance(part, cst.BinaryOperation) and isinstance(part.operator, level) and not part.lpar):
            return operand(part, 0)
        operator = part.operator.with_changes(whitespace_before=_newline(indent),
                                              whitespace_after=cst.SimpleWhitespace(" "))
        right = operand(part.right, len(code(part.operator).strip()) + 1)
        return part.with_changes(left=split(part.left), operator=operator, right=right)

    return split(node)


def _value_holder(stmt: cst.BaseSmallStatement):
    if isinstance(stmt, (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Return, cst.Expr)):
        return getattr(stmt, "value", None)
    return None


def fit_line(line: cst.SimpleStatementLine, block_indent: int, unit: str, limit: int | None):
    """A one-line statement whose value is a call, with the call's arguments wrapped when the
    line is longer than ``limit`` (the rest of the statement stays as it is)."""
    if limit is None or len(line.body) != 1:
        return line
    text = code(line.with_changes(leading_lines=[])).rstrip("\n")
    if "\n" in text or block_indent + len(text) <= limit:
        return line
    stmt = line.body[0]
    value = _value_holder(stmt)
    if isinstance(value, cst.Tuple) and not value.lpar:
        # `return <call chain>, other`: the longest element that is a call chain is wrapped
        chains = [e for e in value.elements if _chain(e.value) and code(e.value) in text]
        if not chains:
            return line
        element = max(chains, key=lambda e: len(code(e.value)))
        before, after = text.split(code(element.value), 1)
        laid, _ = lay_out_call(element.value, None, [], " " * block_indent + before, after, "", unit, limit)
        if laid is element.value:
            return line
        return line.with_changes(body=[stmt.with_changes(value=value.deep_replace(element.value, laid))])
    if value is None or code(value) not in text:
        return line
    if isinstance(value, cst.Call) and _chain(value):
        before, after = text.split(code(value), 1)
        laid, _ = lay_out_call(value, None, [], " " * block_indent + before, after, "", unit, limit)
        if laid is not value:
            return line.with_changes(body=[stmt.with_changes(value=laid)])
        return line
    return _parenthesised_value(line, stmt, value, block_indent, unit, limit)


def _parenthesised_value(line: cst.SimpleStatementLine, stmt, value: cst.BaseExpression, block_indent: int,
                         unit: str, limit: int) -> cst.SimpleStatementLine:
    """``x = <long expression>`` (or ``return ...``) as Black writes it: inside parentheses
    opened after ``=``, on a line of its own one level in, or, arithmetic too long even there,
    split before its operators (:func:`_split_binary`).  Left as it is when a line would still
    be too long (an operand's own brackets would have to open), or when the value has brackets
    of its own (a call, a container) or is a string Black would not split."""
    if value.lpar or isinstance(value, (cst.Tuple, cst.Call, cst.List, cst.Dict, cst.Set, cst.SimpleString,
                                        cst.FormattedString, cst.ConcatenatedString)) \
            or not isinstance(stmt, (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Return)):
        return line
    if block_indent + len(unit) + len(code(value)) > limit:
        if not isinstance(value, cst.BinaryOperation):
            return line
        value = _split_binary(value, unit, limit - block_indent - len(unit))
    wrapped = value.with_changes(lpar=[cst.LeftParen(whitespace_after=_newline(unit))],
                                 rpar=[cst.RightParen(whitespace_before=_newline(""))])
    new = line.with_changes(body=[stmt.with_changes(value=wrapped)])
    lines = code(new.with_changes(leading_lines=[])).rstrip("\n").split("\n")
    return line if any(block_indent + len(part) > limit for part in lines) else new


class Refit(cst.CSTTransformer):
    """Wrap the one-line statements of moved, re-indented or new code that no longer fit,
    and long ``if`` tests.  ``depth`` is the indentation of the outermost statements visited;
    ``shift`` how far right they moved (None: new code).  A configured limit holds for every
    line; with none configured, a moved statement is wrapped only if its lines were under
    100 before it moved."""

    def __init__(self, depth: int, unit: str, style: Style, shift: int | None):
        super().__init__()
        self.depth = depth
        self.unit = unit
        self.style = style
        self.shift = shift
        self.level = 0

    def visit_IndentedBlock(self, node) -> bool:
        self.level += 1
        return True

    def leave_IndentedBlock(self, original_node, updated_node):
        self.level -= 1
        return updated_node

    def _indent(self) -> int:
        return self.depth + self.level * len(self.unit)

    def _limit(self, node: cst.CSTNode) -> int | None:
        if self.style.configured or self.shift is None:
            return self.style.line_length
        first = code(node.with_changes(leading_lines=[])).split("\n")[0]
        return self.style.limit_for(len(first) + self._indent() - self.shift)

    def leave_SimpleStatementLine(self, original_node, updated_node):
        return fit_line(updated_node, self._indent(), self.unit, self._limit(original_node))

    def leave_If(self, original_node, updated_node):
        header = original_node.with_changes(body=cst.SimpleStatementSuite(body=[cst.Pass()]), orelse=None,
                                            leading_lines=[])
        return fit_if(updated_node, self._indent(), self.unit, self._limit(header))


__all__ = ["Refit", "fit_if", "fit_line", "lay_out_call"]
