/*
 * The hot loops of dicomsieve's fast header reader, in C: the element walk and the
 * decoding of the values kept.
 *
 * walk() does exactly what _Parser.dataset and _Parser.sequence in fastread.py do, on a
 * buffer that holds the first bytes of a file (or a whole inflated dataset): it steps
 * over elements by their lengths and keeps the raw (VR, bytes) of the tags a spec
 * names. decode() does what _decode_tree does to that raw tree; walk_decoded() does
 * both in one pass (what parse_header uses). extract() reads record fields from a
 * decoded tree as record.py's helpers do, tuples optionally as the JSON text json.dumps
 * writes (json()); has_creator() is record.is_plain's look for vendor creators;
 * compile_spec() makes of a spec the tag tables the walks look elements up in. The
 * Python functions stay the reference: tests run both ways on every test file and on
 * random corruptions of them and require the same results.
 *
 * Instead of raising, walk() and walk_decoded() return a tuple that says what happened:
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
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define UNDEFINED 0xFFFFFFFFu
#define ITEM 0xFFFEE000u
#define ITEM_END 0xFFFEE00Du
#define SEQUENCE_END 0xFFFEE0DDu

enum outcome { OK = 0, FALLBACK = 1, FAILURE = 2, MORE = 3, PYERROR = 4, NO_VR = 5 };

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
    /* walk_decoded() only (NULL in walk()): values are decoded as they are read */
    struct decoder *dec;
    PyObject *charset;  /* new reference or NULL: the bytes of the top-level (0008,0005) */
    PyObject *deferred; /* new reference or NULL: list of (tree, tag, (vr, bytes)) */
} walker;

static PyObject *decode_element(walker *w, PyObject *tree, PyObject *key, PyObject *vr,
                                uint64_t vpos, uint64_t length, int *keep);

/* Interned VR strings, made once. */
static PyObject *vr_text[26][26];
static PyObject *str_un, *str_sq;

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

struct spec_table;
static int sequence(walker *w, uint64_t pos, int has_end, uint64_t end,
                    const struct spec_table *spec, long depth, PyObject **items_out,
                    uint64_t *pos_out);

/* The length of the explicit VR element at pos and where its value starts. Returns OK,
 * NO_VR (the two bytes are no VR: the caller says so), or what need() returns. */
static int explicit_length(walker *w, uint64_t pos, const char *what, uint64_t *length,
                           uint64_t *vpos) {
    unsigned char a = w->buf[pos + 4], b = w->buf[pos + 5];
    int kind = (a >= 'A' && a <= 'Z' && b >= 'A' && b <= 'Z') ? vr_kind[a - 'A'][b - 'A'] : 0;
    if (kind == 2) {
        int rc = need(w, pos, 12, what);
        if (rc != OK)
            return rc;
        *length = u32(w, pos + 8);
        *vpos = pos + 12;
        return OK;
    }
    if (kind == 1) {
        *length = u16(w, pos + 6);
        *vpos = pos + 8;
        return OK;
    }
    return NO_VR;
}

/* *key, made of tag unless it is there already; -1 with an exception on an error. */
static int tag_key(PyObject **key, uint32_t tag) {
    if (*key == NULL && (*key = PyLong_FromUnsignedLong(tag)) == NULL)
        return -1;
    return 0;
}

/* The VR the dictionary (VR_OF) gives the tag, else ``otherwise``; NULL on an error.
 * *key is the tag's int, made here if need be (see tag_key). */
static PyObject *known_vr(walker *w, PyObject **key, uint32_t tag, PyObject *otherwise) {
    if (tag_key(key, tag) < 0)
        return NULL;
    PyObject *known = PyDict_GetItemWithError(w->vr_of, *key);
    if (known == NULL && PyErr_Occurred())
        return NULL;
    return known != NULL ? known : otherwise;
}

/* (vr, the value's bytes): what the walks keep of an element they want. */
static PyObject *raw_value(const walker *w, PyObject *vr, uint64_t vpos, uint64_t length) {
    PyObject *raw = PyBytes_FromStringAndSize((const char *)w->buf + vpos, (Py_ssize_t)length);
    PyObject *value = raw == NULL ? NULL : PyTuple_Pack(2, vr, raw);
    Py_XDECREF(raw);
    return value;
}

/* What walk() and meta() return for rc (``ok``, a new reference, when rc is OK); NULL
 * with the Python exception set when rc is PYERROR. */
static PyObject *report(const walker *w, int rc, PyObject *ok) {
    switch (rc) {
    case OK:
        return ok;
    case FALLBACK:
        return Py_BuildValue("(iO)", 1, w->message);
    case FAILURE:
        return Py_BuildValue("(isO)", 2, w->code, w->message);
    case MORE:
        return Py_BuildValue("(iO)", 3, Py_None);
    default:
        return NULL;
    }
}

static int is_sq(PyObject *vr) { return vr == str_sq || PyUnicode_Compare(vr, str_sq) == 0; }

/* ------------------------------------------------------------- spec tables */

/* A spec (tag -> None, the presence marker, or the spec of a sequence's items) as the
 * walk reads it: a hash table of uint32 tags, so that an element's tag is looked up
 * without making an int of it, and an int is made only for the tags kept. A
 * compile_spec() capsule holds the tables of a spec and of every dict nested in it
 * (each dict once: shared and even cyclic nesting is fine); the walks also take a plain
 * dict and compile it for that call. Slots own a reference to the spec's key and value:
 * a capsule is a snapshot of the spec, which fastread makes once of TOP_LEVEL_SPEC. */

#define NO_TAG 0xFFFEFFFFu /* an empty slot: no group FFFE tag (a delimiter) is looked up */
#define SPEC_CAPSULE "dicomsieve.scan._native.spec"

typedef struct spec_entry {
    PyObject *key;                 /* the tree's key: the spec's int (an exact int) */
    PyObject *want;                /* the spec's value */
    const struct spec_table *sub;  /* the table of `want` when it is a dict, else NULL */
} spec_entry;

typedef struct spec_table {
    uint32_t mask;         /* slots - 1: a power of two, at least one slot empty */
    Py_ssize_t count;      /* tags in the table */
    uint32_t *tags;        /* per slot: the tag, or NO_TAG */
    spec_entry *entries;   /* per slot, in the same block as tags */
    const PyObject *dict;  /* what it was compiled of: compared, never read, by the compile */
} spec_table;

typedef struct {
    Py_ssize_t count;
    spec_table **tables; /* tables[0] is the spec's own */
} compiled_spec;

static const uint32_t no_tags[1] = {NO_TAG};
static const spec_table empty_table = {.tags = (uint32_t *)no_tags};

static inline uint32_t slot_of(const spec_table *t, uint32_t tag) {
    return (uint32_t)(((uint64_t)tag * 0x9E3779B97F4A7C15ull) >> 32) & t->mask;
}

/* The entry of `tag`, or NULL when the spec does not name it. */
static inline const spec_entry *find_tag(const spec_table *t, uint32_t tag) {
    for (uint32_t i = slot_of(t, tag);; i = (i + 1) & t->mask) {
        if (t->tags[i] == tag)
            return &t->entries[i];
        if (t->tags[i] == NO_TAG)
            return NULL;
    }
}

static void free_compiled(compiled_spec *c) {
    if (c == NULL)
        return;
    for (Py_ssize_t k = 0; k < c->count; k++) {
        spec_table *t = c->tables[k];
        for (uint32_t i = 0; t->tags != NULL && i <= t->mask; i++) {
            if (t->tags[i] != NO_TAG) {
                Py_DECREF(t->entries[i].key);
                Py_DECREF(t->entries[i].want);
            }
        }
        PyMem_Free(t->tags);
        PyMem_Free(t);
    }
    PyMem_Free(c->tables);
    PyMem_Free(c);
}

/* The table of `dict` in c, compiled (with the dicts nested in it) unless it is there
 * already; NULL with an exception on an error. No Python code runs meanwhile: the
 * dicts cannot change. */
static const spec_table *compile_table(compiled_spec *c, PyObject *dict) {
    for (Py_ssize_t k = 0; k < c->count; k++)
        if (c->tables[k]->dict == dict)
            return c->tables[k];
    spec_table **tables = PyMem_Realloc(c->tables, (c->count + 1) * sizeof *tables);
    if (tables == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    c->tables = tables;
    spec_table *t = PyMem_Calloc(1, sizeof *t);
    if (t == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    c->tables[c->count++] = t; /* before the nested dicts, which may lead back to it */
    t->dict = dict;
    uint64_t slots = 1;
    while (slots < 2 * (uint64_t)PyDict_GET_SIZE(dict))
        slots *= 2;
    if (slots > UINT32_MAX) { /* a dict of 2**31 entries: not a spec */
        PyErr_SetString(PyExc_ValueError, "the spec is too large");
        return NULL;
    }
    t->mask = (uint32_t)(slots - 1);
    void *block = PyMem_Malloc(slots * (sizeof *t->tags + sizeof *t->entries));
    if (block == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    t->tags = block;
    t->entries = (spec_entry *)(t->tags + slots);
    for (uint64_t i = 0; i < slots; i++)
        t->tags[i] = NO_TAG;
    if (Py_EnterRecursiveCall(" while compiling a spec"))
        return NULL;
    PyObject *key, *want;
    Py_ssize_t position = 0;
    const spec_table *result = t;
    while (result != NULL && PyDict_Next(dict, &position, &key, &want)) {
        if (!PyLong_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "a spec key is not an int");
            result = NULL;
            break;
        }
        unsigned long long tag = PyLong_AsUnsignedLongLong(key);
        if (tag == (unsigned long long)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                result = NULL;
                break;
            }
            PyErr_Clear(); /* negative or past 64 bits: no element has it */
            continue;
        }
        if (tag > 0xFFFFFFFFull || tag >> 16 == 0xFFFE)
            continue; /* no element is looked up by it */
        uint32_t i = slot_of(t, (uint32_t)tag);
        while (t->tags[i] != NO_TAG && t->tags[i] != tag)
            i = (i + 1) & t->mask;
        if (t->tags[i] == tag)
            continue; /* equal ints of int subclasses: one will do */
        const spec_table *sub = NULL;
        if (PyDict_Check(want) && (sub = compile_table(c, want)) == NULL) {
            result = NULL;
            break;
        }
        /* the tree's key is an exact int, as the Python walk's (True is not 1 there) */
        PyObject *exact = PyLong_CheckExact(key) ? Py_NewRef(key)
                                                 : PyLong_FromUnsignedLongLong(tag);
        if (exact == NULL) {
            result = NULL;
            break;
        }
        t->tags[i] = (uint32_t)tag;
        t->entries[i] = (spec_entry){.key = exact, .want = Py_NewRef(want), .sub = sub};
        t->count++;
    }
    Py_LeaveRecursiveCall();
    return result;
}

/* The compiled `spec` (a dict), NULL with an exception on an error. */
static compiled_spec *compile(PyObject *spec) {
    compiled_spec *c = PyMem_Calloc(1, sizeof *c);
    if (c == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (compile_table(c, spec) == NULL) {
        free_compiled(c);
        return NULL;
    }
    return c;
}

static void spec_capsule_free(PyObject *capsule) {
    free_compiled(PyCapsule_GetPointer(capsule, SPEC_CAPSULE));
}

PyDoc_STRVAR(compile_spec_doc,
             "compile_spec(spec)\n--\n\n"
             "``spec`` (a dict: tag -> None, a marker or a nested spec) as the walks read it, "
             "made once\nfor a spec used again and again; the walks take it in place of the "
             "dict. A snapshot:\nlater changes to the dict are not seen.");

static PyObject *compile_spec(PyObject *module, PyObject *spec) {
    (void)module;
    if (!PyDict_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "compile_spec() needs a dict");
        return NULL;
    }
    compiled_spec *c = compile(spec);
    if (c == NULL)
        return NULL;
    PyObject *capsule = PyCapsule_New(c, SPEC_CAPSULE, spec_capsule_free);
    if (capsule == NULL)
        free_compiled(c);
    return capsule;
}

/* Parse elements from pos to end (or to an item delimiter when !has_end). */
static int dataset(walker *w, uint64_t pos, int has_end, uint64_t end, const spec_table *spec,
                   long depth, PyObject **tree_out, uint64_t *pos_out) {
    int top = depth == 0;
    uint64_t limit = has_end ? end : w->size;
    int rc;
    /* The int of the element's tag: the spec's own for a tag it names, else made only
     * where a dict or set is asked about a tag (VR_OF, the pixel data tags). */
    PyObject *key = NULL;
    PyObject *tree = PyDict_New();
    if (tree == NULL)
        return PYERROR;
    while (pos < limit) {
        Py_CLEAR(key);
        if ((rc = need(w, pos, 8, "element header")) != OK)
            goto done;
        uint32_t group = u16(w, pos), elem = u16(w, pos + 2);
        uint32_t tag = group << 16 | elem;
        uint64_t length, vpos;
        PyObject *vr;
        int unknown = 0; /* written as UN: a sequence inside holds implicit VR LE items */
        if (group == 0xFFFE) {
            if (tag == ITEM_END && !has_end && !top) {
                *tree_out = tree;
                *pos_out = pos + 8;
                return OK;
            }
            rc = fallback(w, text("unexpected delimiter (%04X,%04X) at byte %llu", group, elem,
                                  (unsigned long long)pos));
            goto done;
        }
        const spec_entry *entry = find_tag(spec, tag); /* NULL: skip */
        PyObject *want = entry != NULL ? entry->want : NULL;
        key = entry != NULL ? Py_NewRef(entry->key) : NULL;
        if (w->explicit_vr) {
            rc = explicit_length(w, pos, "element header", &length, &vpos);
            if (rc == NO_VR)
                rc = fallback(w, text("unknown VR at byte %llu", (unsigned long long)pos));
            if (rc != OK)
                goto done;
            vr = vr_text[w->buf[pos + 4] - 'A'][w->buf[pos + 5] - 'A'];
            unknown = vr == str_un;
            if (unknown) {
                if ((vr = known_vr(w, &key, tag, str_un)) == NULL) {
                    rc = PYERROR;
                    goto done;
                }
                if (length == UNDEFINED) {
                    rc = fallback(w, PyUnicode_FromString("UN element of undefined length"));
                    goto done;
                }
            }
        } else {
            length = u32(w, pos + 4);
            vpos = pos + 8;
            if ((vr = known_vr(w, &key, tag, length == UNDEFINED ? str_sq : str_un)) == NULL) {
                rc = PYERROR;
                goto done;
            }
        }
        if (top && group == 0x7FE0) {
            int is_pixel = tag_key(&key, tag) < 0 ? -1 : PySet_Contains(w->pixel_tags, key);
            if (is_pixel < 0) {
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
                if (w->pixel == NULL) {
                    rc = PYERROR;
                    goto done;
                }
                /* The reader always stops at the pixel data. */
                Py_DECREF(key);
                *tree_out = tree;
                *pos_out = pos;
                return OK;
            }
        }
        if (length == UNDEFINED) {
            if (!is_sq(vr)) {
                const char *name = PyUnicode_AsUTF8(vr);
                rc = name == NULL ? PYERROR
                                  : fallback(w, text("undefined length for VR %s at byte %llu",
                                                     name, (unsigned long long)pos));
                goto done;
            }
            const spec_table *sub = entry != NULL && entry->sub != NULL ? entry->sub : &empty_table;
            PyObject *items = NULL;
            if ((rc = sequence(w, vpos, 0, 0, sub, depth + 1, &items, &pos)) != OK)
                goto done;
            int err = 0;
            if (want == w->presence)
                err = PyDict_SetItem(tree, key, Py_True);
            else if (entry != NULL && entry->sub != NULL)
                err = PyDict_SetItem(tree, key, items);
            Py_DECREF(items);
            if (err < 0) {
                rc = PYERROR;
                goto done;
            }
            continue;
        }
        if (vpos + length > w->size) {
            rc = fail(w, "PARSE_TRUNCATED",
                      text("element (%04X,%04X) at byte %llu declares %llu bytes; "
                           "only %lld remain in the file",
                           group, elem, (unsigned long long)pos, (unsigned long long)length,
                           (long long)w->size - (long long)vpos));
            goto done;
        }
        if (want == NULL) {
            pos = vpos + length;
            continue;
        }
        PyObject *value = NULL;
        if (want == w->presence) {
            value = Py_NewRef(Py_True);
        } else if (entry->sub != NULL) {
            if (!is_sq(vr)) {
                rc = fallback(w, text("expected a sequence at byte %llu", (unsigned long long)pos));
                goto done;
            }
            uint64_t ignored;
            if (unknown) {
                walker implicit = *w;
                implicit.little = 1;
                implicit.explicit_vr = 0;
                implicit.pixel = NULL;
                implicit.message = NULL;
                rc = sequence(&implicit, vpos, 1, vpos + length, entry->sub, depth + 1, &value,
                              &ignored);
                w->message = implicit.message;
                w->code = implicit.code;
                w->deferred = implicit.deferred; /* the same list, or one made below */
                Py_XDECREF(implicit.pixel); /* never set below the top level */
            } else {
                rc = sequence(w, vpos, 1, vpos + length, entry->sub, depth + 1, &value, &ignored);
            }
            if (rc != OK)
                goto done;
        } else {
            if ((rc = need(w, vpos, length, "element value")) != OK)
                goto done;
            if (w->dec == NULL) {
                value = raw_value(w, vr, vpos, length);
            } else {
                if (top && tag == 0x00080005) { /* SpecificCharacterSet: its bytes, as is */
                    PyObject *bytes = PyBytes_FromStringAndSize((const char *)w->buf + vpos,
                                                                (Py_ssize_t)length);
                    if (bytes == NULL) {
                        rc = PYERROR;
                        goto done;
                    }
                    Py_XSETREF(w->charset, bytes);
                }
                int keep;
                value = decode_element(w, tree, key, vr, vpos, length, &keep);
                if (!keep) {
                    /* what decode() drops; a value of the same tag before it went too */
                    if (PyDict_DelItem(tree, key) < 0) {
                        if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                            rc = PYERROR;
                            goto done;
                        }
                        PyErr_Clear();
                    }
                    pos = vpos + length;
                    continue;
                }
            }
        }
        int err = value == NULL ? -1 : PyDict_SetItem(tree, key, value);
        Py_XDECREF(value);
        if (err < 0) {
            rc = PYERROR;
            goto done;
        }
        pos = vpos + length;
    }
    Py_CLEAR(key);
    if (!has_end && !top) {
        rc = fail(w, "PARSE_TRUNCATED",
                  PyUnicode_FromString("an item of undefined length never ends"));
        goto done;
    }
    *tree_out = tree;
    *pos_out = pos;
    return OK;
done:
    Py_XDECREF(key);
    Py_DECREF(tree);
    return rc;
}

static int sequence(walker *w, uint64_t pos, int has_end, uint64_t end, const spec_table *spec,
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
            if (spec->count > 0) {
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

/* ------------------------------------------------------------------ decode() */

/* What _decode_tree does with a value of each VR. */
enum vr_class { VR_DROP, VR_DS, VR_IS, VR_TEXT, VR_MULTI_TEXT, VR_PN, VR_BINARY };

typedef struct decoder {
    int little;
    int latin1;          /* the dataset's character set decodes as Latin-1 */
    PyObject *codec;     /* for the Python fallback: the codec name or None */
    PyObject *raw_tags;  /* frozenset: tags kept as bytes */
    PyObject *decode_text; /* the Python _decode_text, for other character sets */
} decoder;

static int is_charset_vr(char a, char b) {
    /* LO LT PN SH ST UC UT: decoded with the SpecificCharacterSet */
    return (a == 'L' && (b == 'O' || b == 'T')) || (a == 'P' && b == 'N') ||
           (a == 'S' && (b == 'H' || b == 'T')) || (a == 'U' && (b == 'C' || b == 'T'));
}

static enum vr_class classify(char a, char b, char *binary) {
    *binary = 0;
    switch (a << 8 | b) {
    case 'D' << 8 | 'S':
        return VR_DS;
    case 'I' << 8 | 'S':
        return VR_IS;
    case 'L' << 8 | 'T':
    case 'S' << 8 | 'T':
    case 'U' << 8 | 'T':
    case 'U' << 8 | 'R':
        return VR_TEXT; /* single-valued: no split on backslashes */
    case 'P' << 8 | 'N':
        return VR_PN;
    case 'A' << 8 | 'E':
    case 'A' << 8 | 'S':
    case 'C' << 8 | 'S':
    case 'D' << 8 | 'A':
    case 'D' << 8 | 'T':
    case 'L' << 8 | 'O':
    case 'S' << 8 | 'H':
    case 'T' << 8 | 'M':
    case 'U' << 8 | 'C':
    case 'U' << 8 | 'I':
        return VR_MULTI_TEXT;
    case 'U' << 8 | 'S':
        *binary = 'H';
        return VR_BINARY;
    case 'S' << 8 | 'S':
        *binary = 'h';
        return VR_BINARY;
    case 'U' << 8 | 'L':
        *binary = 'I';
        return VR_BINARY;
    case 'S' << 8 | 'L':
        *binary = 'i';
        return VR_BINARY;
    case 'F' << 8 | 'L':
        *binary = 'f';
        return VR_BINARY;
    case 'F' << 8 | 'D':
        *binary = 'd';
        return VR_BINARY;
    case 'S' << 8 | 'V':
        *binary = 'q';
        return VR_BINARY;
    case 'U' << 8 | 'V':
        *binary = 'Q';
        return VR_BINARY;
    default:
        return VR_DROP;
    }
}

/* [*start, *end) without leading and trailing spaces and NULs: str.strip(" \x00"). */
static void strip_padding(const char *p, Py_ssize_t *start, Py_ssize_t *end) {
    while (*start < *end && (p[*start] == ' ' || p[*start] == '\0'))
        (*start)++;
    while (*end > *start && (p[*end - 1] == ' ' || p[*end - 1] == '\0'))
        (*end)--;
}

/* float(text) if finite, else None; None where float() raises ValueError. */
static PyObject *to_float(PyObject *text) {
    PyObject *value = PyFloat_FromString(text);
    if (value == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (!isfinite(PyFloat_AS_DOUBLE(value))) {
        Py_DECREF(value);
        Py_RETURN_NONE;
    }
    return value;
}

/* int(text.strip()), else an integral float(text) as int, else None (values._to_int).
 * int() itself skips ASCII whitespace only, str.strip() all Unicode whitespace: the
 * strip is tried only when int() alone fails. */
static PyObject *to_int(PyObject *text) {
    PyObject *value = PyLong_FromUnicodeObject(text, 10);
    if (value != NULL)
        return value;
    if (!PyErr_ExceptionMatches(PyExc_ValueError))
        return NULL;
    PyErr_Clear();
    PyObject *stripped = PyObject_CallMethod(text, "strip", NULL);
    if (stripped == NULL)
        return NULL;
    if (PyUnicode_GET_LENGTH(stripped) != PyUnicode_GET_LENGTH(text)) {
        value = PyLong_FromUnicodeObject(stripped, 10);
        Py_DECREF(stripped);
        if (value != NULL)
            return value;
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return NULL;
        PyErr_Clear();
    } else {
        Py_DECREF(stripped);
    }
    PyObject *number = to_float(text);
    if (number == NULL || number == Py_None)
        return number;
    double d = PyFloat_AS_DOUBLE(number);
    Py_DECREF(number);
    if (d != floor(d))
        Py_RETURN_NONE;
    return PyLong_FromDouble(d);
}

/* Whether every byte of [p, p + n) is one of `allowed` (a NUL-terminated set). */
static int only(const char *p, Py_ssize_t n, const char *allowed) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] == '\0' || strchr(allowed, p[i]) == NULL)
            return 0;
    return 1;
}

/* One stripped part of a DS, IS or text value. The common numbers are read from the
 * bytes without a str: float() strips whitespace and underscores, then converts with
 * PyOS_string_to_double, which is all there is to do for digits, signs, dots and
 * exponents; int() of at most 18 digits with a sign is their value. Other text takes
 * to_float() / to_int() on the str. */
static PyObject *text_part(const char *p, Py_ssize_t n, enum vr_class kind) {
    if (kind == VR_DS && n < 64 && only(p, n, "0123456789+-.eE")) {
        char copy[64];
        memcpy(copy, p, n);
        copy[n] = '\0';
        char *end;
        double d = PyOS_string_to_double(copy, &end, NULL);
        if (d == -1.0 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError))
                return NULL;
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        if (end != copy + n || !isfinite(d))
            Py_RETURN_NONE;
        return PyFloat_FromDouble(d);
    }
    if (kind == VR_IS) {
        Py_ssize_t sign = n > 0 && (p[0] == '+' || p[0] == '-');
        if (n > sign && n - sign <= 18 && only(p + sign, n - sign, "0123456789")) {
            long long v = 0;
            for (Py_ssize_t i = sign; i < n; i++)
                v = v * 10 + (p[i] - '0');
            return PyLong_FromLongLong(p[0] == '-' ? -v : v);
        }
    }
    PyObject *text = PyUnicode_DecodeLatin1(p, n, NULL);
    if (text == NULL || (kind != VR_DS && kind != VR_IS))
        return text;
    PyObject *item = kind == VR_DS ? to_float(text) : to_int(text);
    Py_DECREF(text);
    return item;
}

/* Split Latin-1 bytes on backslashes (unless single-valued), strip the padding of each
 * part, then: DS -> float, IS -> int, text -> str (PN also drops trailing '='). An
 * all-empty value is (). This is clean_text / normalize_components on bytes, which is
 * the same as on the decoded text because Latin-1 maps each byte to one character. */
static PyObject *decode_text_value(const char *p, Py_ssize_t n, enum vr_class kind) {
    const char *stop = p + n;
    Py_ssize_t parts = 1;
    if (kind != VR_TEXT)
        for (const char *q = p; (q = memchr(q, '\\', stop - q)) != NULL; q++)
            parts++;
    PyObject *out = PyTuple_New(parts);
    if (out == NULL)
        return NULL;
    int any = 0;
    Py_ssize_t start = 0;
    for (Py_ssize_t k = 0; k < parts; k++) {
        const char *bs = k + 1 < parts ? memchr(p + start, '\\', n - start) : NULL;
        Py_ssize_t end = bs != NULL ? bs - p : n;
        Py_ssize_t a = start, b = end;
        strip_padding(p, &a, &b);
        if (kind == VR_PN)
            while (b > a && p[b - 1] == '=')
                b--;
        any |= b > a;
        PyObject *item = text_part(p + a, b - a, kind);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, k, item);
        start = end + 1;
    }
    if (!any) {
        Py_DECREF(out);
        return PyTuple_New(0);
    }
    return out;
}

static PyObject *decode_binary_value(const unsigned char *p, Py_ssize_t n, char code,
                                     int little) {
    Py_ssize_t width = (code == 'H' || code == 'h')                 ? 2
                       : (code == 'd' || code == 'q' || code == 'Q') ? 8
                                                                     : 4;
    Py_ssize_t count = n / width;
    PyObject *out = PyTuple_New(count);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < count; k++) {
        uint64_t v = 0;
        const unsigned char *q = p + k * width;
        for (Py_ssize_t i = 0; i < width; i++)
            v |= (uint64_t)q[little ? i : width - 1 - i] << (8 * i);
        PyObject *item;
        switch (code) {
        case 'H':
        case 'I':
            item = PyLong_FromUnsignedLong((unsigned long)v);
            break;
        case 'h':
            item = PyLong_FromLong((int16_t)v);
            break;
        case 'i':
            item = PyLong_FromLong((int32_t)v);
            break;
        case 'q':
            item = PyLong_FromLongLong((int64_t)v);
            break;
        case 'Q':
            item = PyLong_FromUnsignedLongLong(v);
            break;
        case 'f': {
            uint32_t bits = (uint32_t)v;
            float f;
            memcpy(&f, &bits, sizeof f);
            item = PyFloat_FromDouble(f);
            break;
        }
        default: {
            double d;
            memcpy(&d, &v, sizeof d);
            item = PyFloat_FromDouble(d);
            break;
        }
        }
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, k, item);
    }
    return out;
}

/* The class of a value's VR (a str) for both decoders, VR_DROP for one that is not two
 * Latin-1 characters; *charset says whether its text depends on the character set. */
static enum vr_class value_class(PyObject *vr, char *binary, int *charset) {
    *binary = 0;
    *charset = 0;
    if (!PyUnicode_Check(vr) || PyUnicode_GET_LENGTH(vr) != 2 ||
        PyUnicode_KIND(vr) != PyUnicode_1BYTE_KIND)
        return VR_DROP;
    const Py_UCS1 *c = PyUnicode_1BYTE_DATA(vr);
    *charset = is_charset_vr((char)c[0], (char)c[1]);
    return classify((char)c[0], (char)c[1], binary);
}

/* A value of class `kind` that needs no character set (or whose text decodes as Latin-1):
 * numbers or text; nothing kept (*keep = 0) for VR_DROP. */
static PyObject *decode_plain(const char *p, Py_ssize_t n, enum vr_class kind, char binary,
                              int little, int *keep) {
    if (kind == VR_DROP) {
        *keep = 0;
        return NULL;
    }
    if (kind == VR_BINARY)
        return decode_binary_value((const unsigned char *)p, n, binary, little);
    return decode_text_value(p, n, kind);
}

static PyObject *decode_tree(decoder *d, PyObject *tree);

/* One value of a raw tree; NULL with an exception, or (with *keep == 0) nothing kept. */
static PyObject *decode_value(decoder *d, PyObject *tag, PyObject *value, int *keep) {
    *keep = 1;
    if (!PyTuple_CheckExact(value))
        return Py_NewRef(value);
    if (PyTuple_GET_SIZE(value) == 2 && PyBytes_CheckExact(PyTuple_GET_ITEM(value, 1))) {
        PyObject *vr = PyTuple_GET_ITEM(value, 0), *raw = PyTuple_GET_ITEM(value, 1);
        int is_raw = PySet_Contains(d->raw_tags, tag);
        if (is_raw < 0)
            return NULL;
        if (is_raw)
            return Py_NewRef(raw);
        char binary;
        int charset;
        enum vr_class kind = value_class(vr, &binary, &charset);
        if (kind != VR_DROP && charset && !d->latin1)
            return PyObject_CallFunctionObjArgs(d->decode_text, vr, raw, d->codec, NULL);
        return decode_plain(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), kind, binary,
                            d->little, keep);
    }
    /* the items of a sequence */
    Py_ssize_t count = PyTuple_GET_SIZE(value);
    PyObject *items = PyTuple_New(count);
    if (items == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = PyTuple_GET_ITEM(value, k);
        if (!PyDict_Check(item)) {
            Py_DECREF(items);
            PyErr_SetString(PyExc_TypeError, "a sequence item is not a dict");
            return NULL;
        }
        PyObject *decoded = decode_tree(d, item);
        if (decoded == NULL) {
            Py_DECREF(items);
            return NULL;
        }
        PyTuple_SET_ITEM(items, k, decoded);
    }
    return items;
}

static PyObject *decode_tree(decoder *d, PyObject *tree) {
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    PyObject *tag, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(tree, &position, &tag, &value)) {
        int keep;
        PyObject *decoded = decode_value(d, tag, value, &keep);
        if (!keep)
            continue;
        if (decoded == NULL || PyDict_SetItem(out, tag, decoded) < 0) {
            Py_XDECREF(decoded);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(decoded);
    }
    return out;
}

PyDoc_STRVAR(decode_doc,
             "decode(tree, little, codec, raw_tags, decode_text)\n--\n\n"
             "What fastread._decode_tree returns for a raw tree from walk(); text in other "
             "character\nsets than Latin-1 goes to ``decode_text(vr, raw, codec)``.");

static PyObject *decode(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *tree, *codec, *raw_tags, *decode_text;
    int little;
    if (!PyArg_ParseTuple(args, "O!pOO!O:decode", &PyDict_Type, &tree, &little, &codec,
                          &PyFrozenSet_Type, &raw_tags, &decode_text))
        return NULL;
    decoder d = {
        .little = little,
        .latin1 = PyUnicode_Check(codec) && PyUnicode_CompareWithASCIIString(codec, "latin_1") == 0,
        .codec = codec,
        .raw_tags = raw_tags,
        .decode_text = decode_text,
    };
    return decode_tree(&d, tree);
}

/* -------------------------------------------------------------- walk_decoded() */

/* Whether every byte is ASCII and none is ESC: text that decodes the same in every
 * character set fastread knows (all extend ASCII; ISO 2022 sets only refuse ESC and
 * bytes past ASCII), so that it need not wait for the SpecificCharacterSet. */
static int plain_ascii(const unsigned char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] >= 0x80 || p[i] == 0x1B)
            return 0;
    return 1;
}

/* The element's value as decode() would make it of the raw (vr, bytes); *keep == 0 for
 * a value decode() drops. Text in a character set VR that is not plain ASCII is left
 * as its raw (vr, bytes) and listed in w->deferred, to be decoded once the character
 * set is known (fastread._decode_deferred). NULL with an exception on an error. */
static PyObject *decode_element(walker *w, PyObject *tree, PyObject *key, PyObject *vr,
                                uint64_t vpos, uint64_t length, int *keep) {
    decoder *d = w->dec;
    const char *p = (const char *)w->buf + vpos;
    Py_ssize_t n = (Py_ssize_t)length;
    *keep = 1;
    int is_raw = PySet_Contains(d->raw_tags, key);
    if (is_raw < 0)
        return NULL;
    if (is_raw)
        return PyBytes_FromStringAndSize(p, n);
    char binary;
    int charset;
    enum vr_class kind = value_class(vr, &binary, &charset);
    if (kind != VR_DROP && charset && !plain_ascii((const unsigned char *)p, n)) {
        PyObject *raw = raw_value(w, vr, vpos, length);
        if (raw == NULL)
            return NULL;
        if (w->deferred == NULL && (w->deferred = PyList_New(0)) == NULL) {
            Py_DECREF(raw);
            return NULL;
        }
        PyObject *entry = PyTuple_Pack(3, tree, key, raw);
        int err = entry == NULL ? -1 : PyList_Append(w->deferred, entry);
        Py_XDECREF(entry);
        if (err < 0) {
            Py_DECREF(raw);
            return NULL;
        }
        return raw;
    }
    return decode_plain(p, n, kind, binary, d->little, keep);
}

PyDoc_STRVAR(walk_doc,
             "walk(buffer, size, pos, little, explicit, spec, max_depth, vr_of, pixel_tags, "
             "presence)\n--\n\n"
             "Walk the dataset in ``buffer`` (the first bytes of a file of ``size`` bytes) from "
             "``pos``\nto the pixel data; see the module source for the result. ``spec`` is a "
             "dict or what\ncompile_spec() made of one.");

PyDoc_STRVAR(walk_decoded_doc,
             "walk_decoded(buffer, size, pos, little, explicit, spec, max_depth, vr_of, "
             "pixel_tags, presence, raw_tags)\n--\n\n"
             "walk() and decode() in one pass: the values are decoded as they are read. "
             "(0, tree,\npixel, charset, deferred) on success: ``charset`` is the bytes of "
             "the top-level\nSpecificCharacterSet (or None) and ``deferred`` None or a list "
             "of (tree, tag, (vr,\nbytes)) of text left raw in ``tree`` until the character "
             "set is known.");

/* walk() and walk_decoded(): one walk; with `decoding`, the values are decoded as they
 * are read, raw_tags is the last argument and the result has charset and deferred. */
static PyObject *walk_with(PyObject *args, int decoding) {
    Py_buffer view;
    unsigned long long size, pos;
    int little, explicit_vr;
    long max_depth;
    PyObject *spec, *vr_of, *pixel_tags, *presence, *raw_tags = NULL;
    int parsed =
        decoding
            ? PyArg_ParseTuple(args, "y*KKppOlO!O!OO!:walk_decoded", &view, &size, &pos,
                               &little, &explicit_vr, &spec, &max_depth, &PyDict_Type, &vr_of,
                               &PyFrozenSet_Type, &pixel_tags, &presence, &PyFrozenSet_Type,
                               &raw_tags)
            : PyArg_ParseTuple(args, "y*KKppOlO!O!O:walk", &view, &size, &pos, &little,
                               &explicit_vr, &spec, &max_depth, &PyDict_Type, &vr_of,
                               &PyFrozenSet_Type, &pixel_tags, &presence);
    if (!parsed)
        return NULL;
    /* a compile_spec() capsule, or a dict compiled for this call */
    compiled_spec *own = NULL;
    const compiled_spec *compiled = NULL;
    if (PyDict_Check(spec))
        compiled = own = compile(spec);
    else if (PyCapsule_IsValid(spec, SPEC_CAPSULE))
        compiled = PyCapsule_GetPointer(spec, SPEC_CAPSULE);
    else
        PyErr_SetString(PyExc_TypeError, "the spec is neither a dict nor a compile_spec()");
    if (compiled == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    decoder d = {.little = little, .raw_tags = raw_tags};
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
        .dec = decoding ? &d : NULL,
    };
    PyObject *result = NULL;
    if (w.buflen > w.size) {
        PyErr_SetString(PyExc_ValueError, "the buffer is longer than the file");
    } else {
        PyObject *tree = NULL;
        uint64_t end;
        int rc = dataset(&w, pos, 0, 0, compiled->tables[0], 0, &tree, &end);
        PyObject *ok = NULL;
        if (rc == OK) {
            PyObject *pixel = w.pixel != NULL ? w.pixel : Py_None;
            ok = decoding ? Py_BuildValue("(iNOOO)", 0, tree, pixel,
                                          w.charset != NULL ? w.charset : Py_None,
                                          w.deferred != NULL ? w.deferred : Py_None)
                          : Py_BuildValue("(iNO)", 0, tree, pixel);
        }
        result = report(&w, rc, ok);
    }
    Py_XDECREF(w.pixel);
    Py_XDECREF(w.message);
    Py_XDECREF(w.charset);
    Py_XDECREF(w.deferred);
    free_compiled(own);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *walk(PyObject *module, PyObject *args) {
    (void)module;
    return walk_with(args, 0);
}

static PyObject *walk_decoded(PyObject *module, PyObject *args) {
    (void)module;
    return walk_with(args, 1);
}

/* -------------------------------------------------------------------- json() */

/* ASCII text being written; starts in the struct, moves to the heap when it outgrows it. */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
    char start[256];
} text_buffer;

static int reserve(text_buffer *b, Py_ssize_t extra) {
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > PY_SSIZE_T_MAX / 2 - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t cap = b->cap * 2 > b->len + extra ? b->cap * 2 : b->len + extra;
    char *data = b->data == b->start ? PyMem_Malloc(cap) : PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (b->data == b->start)
        memcpy(data, b->start, b->len);
    b->data = data;
    b->cap = cap;
    return 0;
}

static int put(text_buffer *b, const char *s, Py_ssize_t n) {
    if (reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* The decimal digits of v, with its sign, into out (at least 21 bytes); the length. */
static int decimal(long long v, char *out) {
    char digits[24];
    int n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        out[len++] = '-';
    while (n > 0)
        out[len++] = digits[--n];
    return len;
}

/* float.__repr__ of finite d. Whole numbers below 1e16 it writes as digits and ".0"
 * (past that, with an exponent), done here; other values go through dtoa, whose
 * result is remembered by bit pattern in a small table (positions and spacings repeat
 * from file to file of a series). */
#define REPR_SLOTS 256
static struct {
    uint64_t bits;
    char text[32]; /* empty: unused */
} repr_cache[REPR_SLOTS];

static int json_float(text_buffer *b, double d) {
    if (d == floor(d) && fabs(d) < 1e16) {
        char digits[32];
        int n;
        if (d == 0 && signbit(d)) {
            memcpy(digits, "-0", 2);
            n = 2;
        } else {
            n = decimal((long long)d, digits);
        }
        memcpy(digits + n, ".0", 2);
        return put(b, digits, n + 2);
    }
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    uint64_t h = bits * 0x9E3779B97F4A7C15ull;
    unsigned slot = (unsigned)(h >> 56) % REPR_SLOTS;
    if (repr_cache[slot].text[0] != 0 && repr_cache[slot].bits == bits)
        return put(b, repr_cache[slot].text, (Py_ssize_t)strlen(repr_cache[slot].text));
    char *s = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (s == NULL)
        return -1;
    size_t n = strlen(s);
    if (n < sizeof repr_cache[slot].text) {
        repr_cache[slot].bits = bits;
        memcpy(repr_cache[slot].text, s, n + 1);
    }
    int rc = put(b, s, (Py_ssize_t)n);
    PyMem_Free(s);
    return rc;
}

/* A string as json's encode_basestring_ascii writes it: printable ASCII but the quote
 * and the backslash as is, short escapes where JSON has them, else \uXXXX in lower
 * case hex (a surrogate pair past the BMP). */
static int json_string(text_buffer *b, PyObject *s) {
    static const char hex[] = "0123456789abcdef";
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (reserve(b, n + 2) < 0)
        return -1;
    b->data[b->len++] = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= ' ' && c <= '~' && c != '\\' && c != '"') {
            if (reserve(b, 1) < 0)
                return -1;
            b->data[b->len++] = (char)c;
            continue;
        }
        char escape[12];
        Py_ssize_t k = 0;
        const char *short_form = NULL;
        switch (c) {
        case '\\': short_form = "\\\\"; break;
        case '"': short_form = "\\\""; break;
        case '\b': short_form = "\\b"; break;
        case '\f': short_form = "\\f"; break;
        case '\n': short_form = "\\n"; break;
        case '\r': short_form = "\\r"; break;
        case '\t': short_form = "\\t"; break;
        default: {
            Py_UCS4 units[2] = {c, 0};
            int count = 1;
            if (c >= 0x10000) {
                Py_UCS4 v = c - 0x10000;
                units[0] = 0xD800 | ((v >> 10) & 0x3FF);
                units[1] = 0xDC00 | (v & 0x3FF);
                count = 2;
            }
            for (int u = 0; u < count; u++) {
                escape[k++] = '\\';
                escape[k++] = 'u';
                escape[k++] = hex[(units[u] >> 12) & 0xF];
                escape[k++] = hex[(units[u] >> 8) & 0xF];
                escape[k++] = hex[(units[u] >> 4) & 0xF];
                escape[k++] = hex[units[u] & 0xF];
            }
        }
        }
        if (short_form != NULL ? put(b, short_form, 2) < 0 : put(b, escape, k) < 0)
            return -1;
    }
    return put(b, "\"", 1);
}

/* ``value`` as json.dumps writes it, for what record tuples hold: str, int, float and
 * tuples (or lists) of them; also None, True and False. */
static int json_value(text_buffer *b, PyObject *value) {
    if (value == Py_None)
        return put(b, "null", 4);
    if (value == Py_True)
        return put(b, "true", 4);
    if (value == Py_False)
        return put(b, "false", 5);
    if (PyUnicode_Check(value))
        return json_string(b, value);
    if (PyLong_Check(value)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (!overflow) {
            char digits[32];
            return put(b, digits, decimal(v, digits));
        }
        /* what json writes: int's own repr, also for a subclass */
        PyObject *text = PyLong_Type.tp_repr(value);
        if (text == NULL)
            return -1;
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(text, &n);
        int rc = s == NULL ? -1 : put(b, s, n);
        Py_DECREF(text);
        return rc;
    }
    if (PyFloat_Check(value)) {
        double d = PyFloat_AS_DOUBLE(value);
        if (!isfinite(d))
            return isnan(d) ? put(b, "NaN", 3) : d > 0 ? put(b, "Infinity", 8) : put(b, "-Infinity", 9);
        return json_float(b, d); /* float.__repr__, which json uses */
    }
    if (PyTuple_Check(value) || PyList_Check(value)) {
        if (Py_EnterRecursiveCall(" while encoding JSON"))
            return -1;
        int rc = put(b, "[", 1);
        /* a list may change under us: index it afresh each time */
        for (Py_ssize_t k = 0; rc == 0 && k < PySequence_Fast_GET_SIZE(value); k++) {
            PyObject *item = PySequence_Fast_GET_ITEM(value, k);
            Py_INCREF(item);
            if (k > 0)
                rc = put(b, ", ", 2);
            if (rc == 0)
                rc = json_value(b, item);
            Py_DECREF(item);
        }
        Py_LeaveRecursiveCall();
        return rc < 0 ? -1 : put(b, "]", 1);
    }
    PyErr_Format(PyExc_TypeError, "Object of type %.100s is not JSON serializable",
                 Py_TYPE(value)->tp_name);
    return -1;
}

/* json.dumps(value) for the values json_value knows; NULL with an exception otherwise. */
static PyObject *to_json(PyObject *value) {
    text_buffer b = {.len = 0, .cap = sizeof b.start};
    b.data = b.start;
    PyObject *out = NULL;
    if (json_value(&b, value) == 0 && (out = PyUnicode_New(b.len, 127)) != NULL)
        memcpy(PyUnicode_1BYTE_DATA(out), b.data, b.len);
    if (b.data != b.start)
        PyMem_Free(b.data);
    return out;
}

PyDoc_STRVAR(json_doc,
             "json(value)\n--\n\n"
             "``json.dumps(value)`` for str, int, float, None, bool and tuples or lists of "
             "them (what\nrecord tuples hold); TypeError for anything else.");

static PyObject *json(PyObject *module, PyObject *value) {
    (void)module;
    return to_json(value);
}

/* ----------------------------------------------------------------- extract() */

/* The kinds of record.py's field helpers, in the order of record.FieldKind. */
enum field_kind {
    F_FIRST_STR,
    F_JOINED,
    F_STRS,
    F_INT,
    F_INTS,
    F_FLOAT,
    F_FLOATS,
    F_PRESENT,
    F_STRS_JSON, /* the three tuple kinds above, as the JSON text the index stores */
    F_INTS_JSON,
    F_FLOATS_JSON,
    F_NONE, /* not read from the tree: the caller fills it in */
};

/* record._values: the value's tuple when it is a non-empty tuple of values (borrowed). */
static PyObject *values_of(PyObject *tree, PyObject *tag) {
    PyObject *value = PyDict_GetItemWithError(tree, tag);
    if (value == NULL || !PyTuple_Check(value) || PyTuple_GET_SIZE(value) == 0 ||
        PyDict_Check(PyTuple_GET_ITEM(value, 0)))
        return NULL;
    return value;
}

/* record._number: a finite float of an int or float that is not a bool; else None. */
static PyObject *number_of(PyObject *value) {
    if (PyBool_Check(value) || !(PyLong_Check(value) || PyFloat_Check(value)))
        Py_RETURN_NONE;
    PyObject *result = PyNumber_Float(value);
    if (result == NULL)
        return NULL;
    if (!isfinite(PyFloat_AS_DOUBLE(result))) {
        Py_DECREF(result);
        Py_RETURN_NONE;
    }
    return result;
}

static PyObject *basic_field(PyObject *tree, PyObject *tag, long kind, PyObject *count) {
    PyObject *values = values_of(tree, tag);
    if (values == NULL && PyErr_Occurred())
        return NULL;
    if (kind == F_PRESENT)
        return PyBool_FromLong(PyDict_Contains(tree, tag) == 1);
    if (values == NULL)
        Py_RETURN_NONE;
    Py_ssize_t n = PyTuple_GET_SIZE(values);
    PyObject *first = PyTuple_GET_ITEM(values, 0);
    switch (kind) {
    case F_FIRST_STR:
        if (PyUnicode_Check(first) && PyUnicode_GET_LENGTH(first) > 0)
            return Py_NewRef(first);
        Py_RETURN_NONE;
    case F_JOINED:
    case F_STRS: {
        PyObject *texts = PyTuple_New(n);
        if (texts == NULL)
            return NULL;
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *text = PyObject_Str(PyTuple_GET_ITEM(values, k));
            if (text == NULL) {
                Py_DECREF(texts);
                return NULL;
            }
            PyTuple_SET_ITEM(texts, k, text);
        }
        if (kind == F_STRS)
            return texts;
        PyObject *separator = PyUnicode_FromString("\\");
        PyObject *joined = separator == NULL ? NULL : PyUnicode_Join(separator, texts);
        Py_XDECREF(separator);
        Py_DECREF(texts);
        if (joined != NULL && PyUnicode_GET_LENGTH(joined) == 0) {
            Py_DECREF(joined);
            Py_RETURN_NONE;
        }
        return joined;
    }
    case F_INT:
        if (PyBool_Check(first))
            Py_RETURN_NONE;
        if (PyLong_Check(first))
            return Py_NewRef(first);
        if (PyFloat_Check(first)) {
            double d = PyFloat_AS_DOUBLE(first);
            if (isfinite(d) && d == floor(d))
                return PyLong_FromDouble(d);
        }
        Py_RETURN_NONE;
    case F_INTS: {
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *v = PyTuple_GET_ITEM(values, k);
            if (PyBool_Check(v) || !PyLong_Check(v))
                Py_RETURN_NONE;
        }
        PyObject *ints = PyTuple_New(n);
        if (ints == NULL)
            return NULL;
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *v = PyNumber_Long(PyTuple_GET_ITEM(values, k));
            if (v == NULL) {
                Py_DECREF(ints);
                return NULL;
            }
            PyTuple_SET_ITEM(ints, k, v);
        }
        return ints;
    }
    case F_FLOAT:
        return number_of(first);
    case F_FLOATS: {
        int any_none = 0; /* as in Python: every value converted, then any None: None */
        PyObject *numbers = PyTuple_New(n);
        if (numbers == NULL)
            return NULL;
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *v = number_of(PyTuple_GET_ITEM(values, k));
            if (v == NULL) {
                Py_DECREF(numbers);
                return NULL;
            }
            PyTuple_SET_ITEM(numbers, k, v);
            any_none |= v == Py_None;
        }
        if (any_none || (count != Py_None && PyLong_AsSsize_t(count) != n)) {
            Py_DECREF(numbers);
            if (PyErr_Occurred())
                return NULL;
            Py_RETURN_NONE;
        }
        return numbers;
    }
    default:
        PyErr_SetString(PyExc_ValueError, "unknown field kind");
        return NULL;
    }
}

static PyObject *field(PyObject *tree, PyObject *tag, long kind, PyObject *count) {
    if (kind == F_NONE)
        Py_RETURN_NONE;
    if (kind < F_STRS_JSON || kind > F_FLOATS_JSON)
        return basic_field(tree, tag, kind, count);
    long base = kind == F_STRS_JSON ? F_STRS : kind == F_INTS_JSON ? F_INTS : F_FLOATS;
    PyObject *value = basic_field(tree, tag, base, count);
    if (value == NULL || value == Py_None)
        return value;
    PyObject *text = to_json(value);
    Py_DECREF(value);
    return text;
}

PyDoc_STRVAR(has_creator_doc,
             "has_creator(tree, creators)\n--\n\n"
             "Whether ``tree`` holds a private creator element (gggg,0010) to (gggg,00FF) "
             "whose first\nvalue is a str in ``creators[gggg]`` (what record.is_plain "
             "looks for in Python).");

static PyObject *has_creator(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *tree, *creators, *tag, *value;
    if (!PyArg_ParseTuple(args, "O!O!:has_creator", &PyDict_Type, &tree, &PyDict_Type, &creators))
        return NULL;
    Py_ssize_t position = 0;
    while (PyDict_Next(tree, &position, &tag, &value)) {
        if (!PyLong_Check(tag))
            continue;
        unsigned long long v = PyLong_AsUnsignedLongLong(tag);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError))
                return NULL;
            PyErr_Clear(); /* negative or past 64 bits: no tag */
            continue;
        }
        unsigned long long element = v & 0xFFFF;
        if (v > 0xFFFFFFFFull || element < 0x10 || element > 0xFF)
            continue;
        if (!PyTuple_Check(value) || PyTuple_GET_SIZE(value) == 0 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(value, 0)))
            continue;
        PyObject *group = PyLong_FromUnsignedLongLong(v >> 16);
        if (group == NULL)
            return NULL;
        PyObject *names = PyDict_GetItemWithError(creators, group); /* borrowed */
        Py_DECREF(group);
        if (names == NULL) {
            if (PyErr_Occurred())
                return NULL;
            continue;
        }
        int found = PySequence_Contains(names, PyTuple_GET_ITEM(value, 0));
        if (found < 0)
            return NULL;
        if (found)
            Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(extract_doc,
             "extract(tree, table)\n--\n\n"
             "The values of record fields from a decoded tree: one per ``(tag, kind, count)`` "
             "row of\n``table``, as record._extract computes them in Python.");

static PyObject *extract(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *tree, *table;
    if (!PyArg_ParseTuple(args, "O!O!:extract", &PyDict_Type, &tree, &PyTuple_Type, &table))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(table);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *row = PyTuple_GET_ITEM(table, k);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 3) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_ValueError, "a table row is not (tag, kind, count)");
            return NULL;
        }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(row, 1));
        PyObject *value = kind == -1 && PyErr_Occurred()
                              ? NULL
                              : field(tree, PyTuple_GET_ITEM(row, 0), kind,
                                      PyTuple_GET_ITEM(row, 2));
        if (value == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, value);
    }
    return out;
}

/* ------------------------------------------------------------------- meta() */

PyDoc_STRVAR(meta_doc,
             "meta(buffer, size, pos, wanted)\n--\n\n"
             "Walk the file meta group (explicit VR little endian) from ``pos`` as "
             "fastread._read_meta\ndoes, keeping the raw (VR, bytes) of the tags in "
             "``wanted``. Results as walk(), with\n(0, tree, end) on success.");

static PyObject *meta(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer view;
    unsigned long long size, start;
    PyObject *wanted;
    if (!PyArg_ParseTuple(args, "y*KKO!:meta", &view, &size, &start, &PyFrozenSet_Type, &wanted))
        return NULL;
    walker w = {.buf = view.buf, .buflen = (uint64_t)view.len, .size = size, .little = 1};
    PyObject *result = NULL, *raw = NULL;
    uint64_t pos = start;
    int rc = OK;
    if (w.buflen > w.size) {
        PyErr_SetString(PyExc_ValueError, "the buffer is longer than the file");
        goto done;
    }
    if ((raw = PyDict_New()) == NULL)
        goto done;
    while (pos < w.size) {
        if ((rc = need(&w, pos, 8, "file meta element")) != OK)
            break;
        uint32_t group = u16(&w, pos), elem = u16(&w, pos + 2);
        if (group != 0x0002)
            break;
        uint64_t length, vpos;
        rc = explicit_length(&w, pos, "file meta element", &length, &vpos);
        if (rc == NO_VR)
            rc = fallback(&w, PyUnicode_FromString("file meta element with an unknown VR"));
        if (rc != OK)
            break;
        if (length == UNDEFINED) {
            rc = fallback(&w, PyUnicode_FromString("file meta element of undefined length"));
            break;
        }
        PyObject *key = PyLong_FromUnsignedLong(group << 16 | elem);
        if (key == NULL) {
            rc = PYERROR;
            break;
        }
        int is_wanted = PySet_Contains(wanted, key);
        if (is_wanted < 0) {
            Py_DECREF(key);
            rc = PYERROR;
            break;
        }
        if (is_wanted) {
            if ((rc = need(&w, vpos, length, "file meta element")) != OK) {
                Py_DECREF(key);
                break;
            }
            PyObject *value =
                raw_value(&w, vr_text[w.buf[pos + 4] - 'A'][w.buf[pos + 5] - 'A'], vpos, length);
            int err = value == NULL ? -1 : PyDict_SetItem(raw, key, value);
            Py_XDECREF(value);
            Py_DECREF(key);
            if (err < 0) {
                rc = PYERROR;
                break;
            }
        } else {
            Py_DECREF(key);
            if (vpos + length > w.size) {
                rc = fail(&w, "PARSE_TRUNCATED",
                          text("element (0002,%04X) at byte %llu declares %llu bytes; "
                               "only %lld remain in the file",
                               elem, (unsigned long long)pos, (unsigned long long)length,
                               (long long)w.size - (long long)vpos));
                break;
            }
        }
        pos = vpos + length;
    }
    PyObject *ok = rc == OK ? Py_BuildValue("(iOK)", 0, raw, (unsigned long long)pos) : NULL;
    result = report(&w, rc, ok);
done:
    Py_XDECREF(raw);
    Py_XDECREF(w.message);
    PyBuffer_Release(&view);
    return result;
}

/* ----------------------------------------------------------------- compact() */

PyDoc_STRVAR(compact_doc,
             "compact(row)\n--\n\n"
             "``(mask, values)``: the values of the sequence ``row`` that are not None, in "
             "order and with True\nand False as 1 and 0, and the int whose bit n is set "
             "where ``row[n]`` was kept\n(index/store.py's compact_row).");

static PyObject *compact(PyObject *module, PyObject *row) {
    (void)module;
    PyObject *seq = PySequence_Fast(row, "compact() needs a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        kept += items[i] != Py_None;
    PyObject *values = PyTuple_New(kept);
    PyObject *mask = NULL, *result = NULL;
    if (values == NULL)
        goto done;
    /* The first 64 columns go into a machine word; any further ones (no index row has
       them today) are or-ed into the Python int one by one. */
    unsigned long long low = 0;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = items[i];
        if (value == Py_None)
            continue;
        if (i < 64)
            low |= 1ULL << i;
        PyObject *stored = value == Py_True    ? PyLong_FromLong(1)
                           : value == Py_False ? PyLong_FromLong(0)
                                               : Py_NewRef(value);
        if (stored == NULL)
            goto done;
        PyTuple_SET_ITEM(values, k++, stored);
    }
    if ((mask = PyLong_FromUnsignedLongLong(low)) == NULL)
        goto done;
    for (Py_ssize_t i = 64; i < n; i++) {
        if (items[i] == Py_None)
            continue;
        PyObject *one = PyLong_FromLong(1), *shift = PyLong_FromSsize_t(i);
        PyObject *bit = one != NULL && shift != NULL ? PyNumber_Lshift(one, shift) : NULL;
        Py_XDECREF(one);
        Py_XDECREF(shift);
        PyObject *wider = bit != NULL ? PyNumber_Or(mask, bit) : NULL;
        Py_XDECREF(bit);
        Py_SETREF(mask, wider);
        if (mask == NULL)
            goto done;
    }
    result = PyTuple_Pack(2, mask, values);
done:
    Py_XDECREF(mask);
    Py_XDECREF(values);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, walk_doc},
    {"walk_decoded", walk_decoded, METH_VARARGS, walk_decoded_doc},
    {"compile_spec", compile_spec, METH_O, compile_spec_doc},
    {"decode", decode, METH_VARARGS, decode_doc},
    {"extract", extract, METH_VARARGS, extract_doc},
    {"meta", meta, METH_VARARGS, meta_doc},
    {"json", json, METH_O, json_doc},
    {"has_creator", has_creator, METH_VARARGS, has_creator_doc},
    {"compact", compact, METH_O, compact_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "dicomsieve.scan._native",
    "The element walk and value decoding of the fast header reader, in C (fastread.py).", -1,
    methods,
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

PyMODINIT_FUNC PyInit__native(void) {
    if (str_un == NULL) {
        if (add_vrs(long_vrs, 2) < 0 || add_vrs(short_vrs, 1) < 0)
            return NULL;
        str_un = vr_text['U' - 'A']['N' - 'A'];
        str_sq = vr_text['S' - 'A']['Q' - 'A'];
    }
    return PyModule_Create(&module_def);
}
