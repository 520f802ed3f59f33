/*
 * The element walk of dicomsieve's fast header reader, in C.
 *
 * It does exactly what _Parser.dataset and _Parser.sequence in fastread.py do, on a
 * buffer that holds the first bytes of a file (or a whole inflated dataset): it steps
 * over elements by their lengths and keeps the raw (VR, bytes) of the tags a spec
 * names. It decodes nothing. Python decodes the few values kept and builds the record.
 * The pure Python walk stays the reference: tests run both on every test file and on
 * random corruptions of them and require the same results.
 *
 * Instead of raising, walk() returns a tuple that says what happened:
 *   (0, tree, pixel)           the dataset up to the pixel data (pixel: (tag, offset,
 *                              length or None), or None when the dataset has none)
 *   (1, message)               something the fast reader does not handle: use pydicom
 *   (2, code, message)         a file that is certainly broken (code: an ErrorCode name)
 *   (3, None)                  the buffer ends before the file does: use the Python walk
 *
 * Every read is bounds-checked against the buffer; every length is checked against the
 * file size before it is used; positions are 64-bit and cannot overflow (a position is
 * at most the size of a file plus 2**32).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define UNDEFINED 0xFFFFFFFFu
#define ITEM 0xFFFEE000u
#define ITEM_END 0xFFFEE00Du
#define SEQUENCE_END 0xFFFEE0DDu

enum outcome { OK = 0, FALLBACK = 1, FAILURE = 2, MORE = 3, PYERROR = 4 };

typedef struct {
    const unsigned char *buf;
    uint64_t buflen;
    uint64_t size; /* of the file (or of the inflated dataset) */
    int little;
    int explicit_vr;
    long max_depth;
    PyObject *vr_of;      /* dict: tag -> VR str */
    PyObject *pixel_tags; /* frozenset of tags */
    PyObject *presence;   /* the spec marker for "only whether it is there" */
    PyObject *pixel;      /* new reference or NULL */
    PyObject *message;    /* new reference: the message of FALLBACK / FAILURE */
    const char *code;     /* the ErrorCode name of FAILURE */
} walker;

/* Interned VR strings, made once. */
static PyObject *vr_text[26][26];
static PyObject *str_un, *str_sq, *empty_spec;

static const char *long_vrs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                 "UC", "UN", "UR", "UT", "SV", "UV", NULL};
static const char *short_vrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
                                  "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US", NULL};
/* 0: not a VR, 1: short length, 2: long length */
static unsigned char vr_kind[26][26];

static inline uint32_t u16(const walker *w, uint64_t pos) {
    const unsigned char *p = w->buf + pos;
    return w->little ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[1] | (uint32_t)p[0] << 8;
}

static inline uint32_t u32(const walker *w, uint64_t pos) {
    const unsigned char *p = w->buf + pos;
    if (w->little)
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

/* A message as a str (PyUnicode_FromFormat knows no %X); messages are short ASCII. */
static PyObject *text(const char *format, ...) {
    char buffer[256];
    va_list args;
    va_start(args, format);
    vsnprintf(buffer, sizeof buffer, format, args);
    va_end(args);
    return PyUnicode_FromString(buffer);
}

static int fail(walker *w, const char *code, PyObject *message) {
    if (message == NULL)
        return PYERROR;
    w->code = code;
    w->message = message;
    return FAILURE;
}

static int fallback(walker *w, PyObject *message) {
    if (message == NULL)
        return PYERROR;
    w->message = message;
    return FALLBACK;
}

/* Make [pos, pos + n) readable: PARSE_TRUNCATED past the file, MORE past the buffer. */
static int need(walker *w, uint64_t pos, uint64_t n, const char *what) {
    if (pos + n > w->size)
        return fail(w, "PARSE_TRUNCATED",
                    text("%s at byte %llu needs %llu bytes; the file has %llu",
                                         what, (unsigned long long)pos, (unsigned long long)n,
                                         (unsigned long long)w->size));
    if (pos + n > w->buflen)
        return MORE;
    return OK;
}

static int sequence(walker *w, uint64_t pos, int has_end, uint64_t end, PyObject *spec,
                    long depth, PyObject **items_out, uint64_t *pos_out);

/* Parse elements from pos to end (or to an item delimiter when !has_end). */
static int dataset(walker *w, uint64_t pos, int has_end, uint64_t end, PyObject *spec, long depth,
                   PyObject **tree_out, uint64_t *pos_out) {
    int top = depth == 0;
    uint64_t limit = has_end ? end : w->size;
    int rc;
    PyObject *tree = PyDict_New();
    if (tree == NULL)
        return PYERROR;
    while (pos < limit) {
        if ((rc = need(w, pos, 8, "element header")) != OK)
            goto done;
        uint32_t group = u16(w, pos), elem = u16(w, pos + 2);
        uint32_t tag = group << 16 | elem;
        uint64_t length, vpos;
        PyObject *vr;
        if (group == 0xFFFE) {
            if (tag == ITEM_END && !has_end && !top) {
                *tree_out = tree;
                *pos_out = pos + 8;
                return OK;
            }
            rc = fallback(w, text("unexpected delimiter (%04X,%04X) at byte %llu",
                                                  group, elem, (unsigned long long)pos));
            goto done;
        }
        if (w->explicit_vr) {
            unsigned char a = w->buf[pos + 4], b = w->buf[pos + 5];
            int kind = (a >= 'A' && a <= 'Z' && b >= 'A' && b <= 'Z') ? vr_kind[a - 'A'][b - 'A'] : 0;
            if (kind == 2) {
                if ((rc = need(w, pos, 12, "element header")) != OK)
                    goto done;
                length = u32(w, pos + 8);
                vpos = pos + 12;
            } else if (kind == 1) {
                length = u16(w, pos + 6);
                vpos = pos + 8;
            } else {
                rc = fallback(w, text("unknown VR at byte %llu",
                                                      (unsigned long long)pos));
                goto done;
            }
            vr = vr_text[a - 'A'][b - 'A'];
            if (vr == str_un) {
                PyObject *key = PyLong_FromUnsignedLong(tag);
                if (key == NULL) {
                    rc = PYERROR;
                    goto done;
                }
                PyObject *known = PyDict_GetItemWithError(w->vr_of, key);
                Py_DECREF(key);
                if (known == NULL && PyErr_Occurred()) {
                    rc = PYERROR;
                    goto done;
                }
                vr = known != NULL ? known : str_un;
                if (length == UNDEFINED) {
                    rc = fallback(w, PyUnicode_FromString("UN element of undefined length"));
                    goto done;
                }
            }
        } else {
            length = u32(w, pos + 4);
            vpos = pos + 8;
            PyObject *key = PyLong_FromUnsignedLong(tag);
            if (key == NULL) {
                rc = PYERROR;
                goto done;
            }
            PyObject *known = PyDict_GetItemWithError(w->vr_of, key);
            Py_DECREF(key);
            if (known == NULL && PyErr_Occurred()) {
                rc = PYERROR;
                goto done;
            }
            vr = known != NULL ? known : (length == UNDEFINED ? str_sq : str_un);
        }
        PyObject *key = PyLong_FromUnsignedLong(tag);
        if (key == NULL) {
            rc = PYERROR;
            goto done;
        }
        if (top && group == 0x7FE0) {
            int is_pixel = PySet_Contains(w->pixel_tags, key);
            if (is_pixel < 0) {
                Py_DECREF(key);
                rc = PYERROR;
                goto done;
            }
            if (is_pixel) {
                Py_XDECREF(w->pixel);
                w->pixel = length == UNDEFINED
                               ? Py_BuildValue("(kKO)", (unsigned long)tag,
                                               (unsigned long long)vpos, Py_None)
                               : Py_BuildValue("(kKK)", (unsigned long)tag,
                                               (unsigned long long)vpos,
                                               (unsigned long long)length);
                Py_DECREF(key);
                if (w->pixel == NULL) {
                    rc = PYERROR;
                    goto done;
                }
                /* The reader always stops at the pixel data. */
                *tree_out = tree;
                *pos_out = pos;
                return OK;
            }
        }
        PyObject *want = PyDict_GetItemWithError(spec, key); /* borrowed; NULL: skip */
        if (want == NULL && PyErr_Occurred()) {
            Py_DECREF(key);
            rc = PYERROR;
            goto done;
        }
        if (length == UNDEFINED) {
            if (vr != str_sq && PyUnicode_Compare(vr, str_sq) != 0) {
                Py_DECREF(key);
                const char *name = PyUnicode_AsUTF8(vr);
                if (name == NULL) {
                    rc = PYERROR;
                    goto done;
                }
                rc = fallback(w, text("undefined length for VR %s at byte %llu", name,
                                      (unsigned long long)pos));
                goto done;
            }
            PyObject *sub = (want != NULL && PyDict_Check(want)) ? want : empty_spec;
            PyObject *items = NULL;
            if ((rc = sequence(w, vpos, 0, 0, sub, depth + 1, &items, &pos)) != OK) {
                Py_DECREF(key);
                goto done;
            }
            int err = 0;
            if (want == w->presence)
                err = PyDict_SetItem(tree, key, Py_True);
            else if (want != NULL && PyDict_Check(want))
                err = PyDict_SetItem(tree, key, items);
            Py_DECREF(items);
            Py_DECREF(key);
            if (err < 0) {
                rc = PYERROR;
                goto done;
            }
            continue;
        }
        if (vpos + length > w->size) {
            Py_DECREF(key);
            rc = fail(w, "PARSE_TRUNCATED",
                      text("element (%04X,%04X) at byte %llu declares %llu bytes; "
                                           "only %lld remain in the file",
                                           group, elem, (unsigned long long)pos,
                                           (unsigned long long)length,
                                           (long long)w->size - (long long)vpos));
            goto done;
        }
        if (want == NULL) {
            Py_DECREF(key);
            pos = vpos + length;
            continue;
        }
        PyObject *value = NULL;
        if (want == w->presence) {
            value = Py_NewRef(Py_True);
        } else if (PyDict_Check(want)) {
            if (vr != str_sq && PyUnicode_Compare(vr, str_sq) != 0) {
                Py_DECREF(key);
                rc = fallback(w, text("expected a sequence at byte %llu",
                                                      (unsigned long long)pos));
                goto done;
            }
            uint64_t ignored;
            if ((rc = sequence(w, vpos, 1, vpos + length, want, depth + 1, &value, &ignored)) !=
                OK) {
                Py_DECREF(key);
                goto done;
            }
        } else {
            if ((rc = need(w, vpos, length, "element value")) != OK) {
                Py_DECREF(key);
                goto done;
            }
            PyObject *raw =
                PyBytes_FromStringAndSize((const char *)w->buf + vpos, (Py_ssize_t)length);
            value = raw == NULL ? NULL : PyTuple_Pack(2, vr, raw);
            Py_XDECREF(raw);
        }
        if (value == NULL) {
            Py_DECREF(key);
            rc = PYERROR;
            goto done;
        }
        int err = PyDict_SetItem(tree, key, value);
        Py_DECREF(value);
        Py_DECREF(key);
        if (err < 0) {
            rc = PYERROR;
            goto done;
        }
        pos = vpos + length;
    }
    if (!has_end && !top) {
        rc = fail(w, "PARSE_TRUNCATED", PyUnicode_FromString("an item of undefined length never ends"));
        goto done;
    }
    *tree_out = tree;
    *pos_out = pos;
    return OK;
done:
    Py_DECREF(tree);
    return rc;
}

static int sequence(walker *w, uint64_t pos, int has_end, uint64_t end, PyObject *spec,
                    long depth, PyObject **items_out, uint64_t *pos_out) {
    if (depth > w->max_depth)
        return fail(w, "PARSE_TOO_DEEP",
                    text("sequences nested deeper than %ld levels at byte %llu",
                                         w->max_depth, (unsigned long long)pos));
    uint64_t limit = has_end ? end : w->size;
    int rc;
    PyObject *items = PyList_New(0);
    if (items == NULL)
        return PYERROR;
    while (pos < limit) {
        if ((rc = need(w, pos, 8, "item header")) != OK)
            goto done;
        uint32_t tag = u16(w, pos) << 16 | u16(w, pos + 2);
        uint64_t length = u32(w, pos + 4);
        if (tag == SEQUENCE_END) {
            *items_out = PyList_AsTuple(items);
            Py_DECREF(items);
            *pos_out = pos + 8;
            return *items_out == NULL ? PYERROR : OK;
        }
        if (tag != ITEM) {
            rc = fallback(w, text("expected an item tag at byte %llu",
                                                  (unsigned long long)pos));
            goto done;
        }
        PyObject *item = NULL;
        if (length == UNDEFINED) {
            if ((rc = dataset(w, pos + 8, 0, 0, spec, depth, &item, &pos)) != OK)
                goto done;
        } else {
            if (pos + 8 + length > w->size) {
                rc = fail(w, "PARSE_TRUNCATED",
                          text("item at byte %llu declares %llu bytes; "
                                               "only %lld remain",
                                               (unsigned long long)pos, (unsigned long long)length,
                                               (long long)w->size - (long long)pos - 8));
                goto done;
            }
            if (PyDict_GET_SIZE(spec) > 0) {
                uint64_t ignored;
                if ((rc = dataset(w, pos + 8, 1, pos + 8 + length, spec, depth, &item,
                                  &ignored)) != OK)
                    goto done;
            } else if ((item = PyDict_New()) == NULL) {
                rc = PYERROR;
                goto done;
            }
            pos += 8 + length;
        }
        int err = PyList_Append(items, item);
        Py_DECREF(item);
        if (err < 0) {
            rc = PYERROR;
            goto done;
        }
    }
    if (!has_end) {
        rc = fail(w, "PARSE_TRUNCATED",
                  PyUnicode_FromString("a sequence of undefined length never ends"));
        goto done;
    }
    *items_out = PyList_AsTuple(items);
    Py_DECREF(items);
    *pos_out = pos;
    return *items_out == NULL ? PYERROR : OK;
done:
    Py_DECREF(items);
    return rc;
}

PyDoc_STRVAR(walk_doc,
             "walk(buffer, size, pos, little, explicit, spec, max_depth, vr_of, pixel_tags, "
             "presence)\n--\n\n"
             "Walk the dataset in ``buffer`` (the first bytes of a file of ``size`` bytes) from "
             "``pos``\nto the pixel data; see the module source for the result.");

static PyObject *walk(PyObject *module, PyObject *args) {
    Py_buffer view;
    unsigned long long size, pos;
    int little, explicit_vr;
    long max_depth;
    PyObject *spec, *vr_of, *pixel_tags, *presence;
    if (!PyArg_ParseTuple(args, "y*KKppO!lO!O!O:walk", &view, &size, &pos, &little, &explicit_vr,
                          &PyDict_Type, &spec, &max_depth, &PyDict_Type, &vr_of,
                          &PyFrozenSet_Type, &pixel_tags, &presence))
        return NULL;
    walker w = {
        .buf = view.buf,
        .buflen = (uint64_t)view.len,
        .size = size,
        .little = little,
        .explicit_vr = explicit_vr,
        .max_depth = max_depth,
        .vr_of = vr_of,
        .pixel_tags = pixel_tags,
        .presence = presence,
    };
    PyObject *result = NULL;
    if (w.buflen > w.size) {
        PyErr_SetString(PyExc_ValueError, "the buffer is longer than the file");
    } else {
        PyObject *tree = NULL;
        uint64_t end;
        switch (dataset(&w, pos, 0, 0, spec, 0, &tree, &end)) {
        case OK:
            result = Py_BuildValue("(iNO)", 0, tree, w.pixel != NULL ? w.pixel : Py_None);
            break;
        case FALLBACK:
            result = Py_BuildValue("(iO)", 1, w.message);
            break;
        case FAILURE:
            result = Py_BuildValue("(isO)", 2, w.code, w.message);
            break;
        case MORE:
            result = Py_BuildValue("(iO)", 3, Py_None);
            break;
        default: /* a Python exception is set */
            break;
        }
    }
    Py_XDECREF(w.pixel);
    Py_XDECREF(w.message);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, walk_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "dicomsieve.scan._walk",
    "The element walk of the fast header reader, in C (see fastread.py).", -1, methods,
};

static int add_vrs(const char **vrs, unsigned char kind) {
    for (const char **vr = vrs; *vr != NULL; vr++) {
        int a = (*vr)[0] - 'A', b = (*vr)[1] - 'A';
        PyObject *text = PyUnicode_InternFromString(*vr);
        if (text == NULL)
            return -1;
        vr_text[a][b] = text;
        vr_kind[a][b] = kind;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__walk(void) {
    if (str_un == NULL) {
        if (add_vrs(long_vrs, 2) < 0 || add_vrs(short_vrs, 1) < 0)
            return NULL;
        str_un = vr_text['U' - 'A']['N' - 'A'];
        str_sq = vr_text['S' - 'A']['Q' - 'A'];
        if ((empty_spec = PyDict_New()) == NULL)
            return NULL;
    }
    return PyModule_Create(&module_def);
}
