"""The public API is complete and documented: every exported name exists, has a docstring that
help() renders, the written-out __all__ lists miss no exception class, and the async and Arrow
entry points are there. (Types themselves: .ci/typing runs stubtest and mypy --strict.)"""

import inspect
import pydoc

import xdisruptor
from xdisruptor import errors


def test_should_export_every_exception_class():
    classes = sorted(n for n, v in vars(errors).items()
                     if inspect.isclass(v) and issubclass(v, errors.Error))
    assert sorted(errors.__all__) == classes
    assert set(classes) <= set(xdisruptor.__all__)
    for name in classes:
        assert getattr(xdisruptor, name) is getattr(errors, name)


def test_should_document_every_public_name_and_render_it_with_help():
    for name in xdisruptor.__all__:
        obj = getattr(xdisruptor, name)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
            assert (obj.__doc__ or "").strip(), f"xdisruptor.{name} has no docstring"
    for cls in (xdisruptor.Ring, xdisruptor.Producer, xdisruptor.Consumer, xdisruptor.Journal,
                xdisruptor.JournalRecorder):
        for attr, member in vars(cls).items():
            if attr.startswith("_") and attr not in ("__aiter__", "__iter__"):
                continue
            if callable(member) or isinstance(member, property):
                assert (member.__doc__ or "").strip() or attr in ("__enter__", "__exit__"), \
                    f"{cls.__name__}.{attr} has no docstring"
    text = " ".join(pydoc.render_doc(xdisruptor.Consumer, renderer=pydoc.plaintext).split())
    text = text.replace(" | ", " ")
    assert "abatches" in text and "awaiting new events without blocking the event loop" in text
    assert "apublish" in pydoc.render_doc(xdisruptor.Producer, renderer=pydoc.plaintext)
    assert "RecordBatch" in pydoc.render_doc(xdisruptor.to_arrow, renderer=pydoc.plaintext)
