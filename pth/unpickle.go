package pth

import (
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"

	"github.com/rwkvkit/rwkvkit/format"
)

type globalKind uint8

const (
	gOrderedDict globalKind = iota
	gRebuildV2
	gRebuildV3
	gParameter
	gParameterWithState
	gSize
	gDevice
	gStorage
	gDType
)

type global struct {
	kind  globalKind
	dtype format.DType // of a storage type (Invalid: untyped, bytes) or a dtype
}

// globals is the allowlist: the names a checkpoint's pickle may refer to.
var globals = func() map[string]global {
	g := map[string]global{
		"collections.OrderedDict":                    {kind: gOrderedDict},
		"torch._utils._rebuild_tensor_v2":            {kind: gRebuildV2},
		"torch._utils._rebuild_tensor_v3":            {kind: gRebuildV3},
		"torch._utils._rebuild_parameter":            {kind: gParameter},
		"torch._utils._rebuild_parameter_with_state": {kind: gParameterWithState},
		"torch.Size":            {kind: gSize},
		"torch.device":          {kind: gDevice},
		"torch.UntypedStorage":  {kind: gStorage, dtype: format.Invalid},
		"torch._UntypedStorage": {kind: gStorage, dtype: format.Invalid},
	}
	storages := map[string]format.DType{
		"Float": format.F32, "Half": format.F16, "BFloat16": format.BF16, "Double": format.F64,
		"Long": format.I64, "Int": format.I32, "Short": format.I16, "Char": format.I8,
		"Byte": format.U8, "Bool": format.Bool,
	}
	for name, dt := range storages {
		// Checkpoints saved from a GPU by old versions name the CUDA types.
		g["torch."+name+"Storage"] = global{kind: gStorage, dtype: dt}
		g["torch.cuda."+name+"Storage"] = global{kind: gStorage, dtype: dt}
	}
	dtypes := map[string]format.DType{
		"float32": format.F32, "float16": format.F16, "bfloat16": format.BF16, "float64": format.F64,
		"int64": format.I64, "int32": format.I32, "int16": format.I16, "int8": format.I8,
		"uint8": format.U8, "uint16": format.U16, "uint32": format.U32, "uint64": format.U64,
		"bool": format.Bool,
	}
	for name, dt := range dtypes {
		g["torch."+name] = global{kind: gDType, dtype: dt}
	}
	return g
}()

// Values the resolver hands to the unpickler.
type (
	storageType struct{ dtype format.DType }
	dtypeValue  struct{ dtype format.DType }
	pyFunc      struct {
		name string
		call func(args []any) (any, error)
		cost int64 // what a call allocates, charged by REDUCE
	}
)

func (f *pyFunc) Call(args ...any) (any, error) {
	v, err := f.call(args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	return v, nil
}

// A loader turns one checkpoint pickle into tensor descriptors.
type loader struct {
	// budget is the memory left to the pickles of the file, shared by its
	// loaders; nil means a budget for the pickle alone.
	budget   *format.Budget
	legacy   bool
	storages map[string]*storage // root storages by key
	views    map[string]*storage // legacy storage views by view key
	// resolve places a newly seen root storage of nbytes bytes in the file
	// (or marks it to be placed later); it fails if the file cannot hold it.
	resolve func(key string, nbytes int64) (*storage, error)
}

func (l *loader) findClass(module, name string) (any, error) {
	g, ok := globals[module+"."+name]
	if !ok {
		return nil, &GlobalError{Module: module, Name: name}
	}
	full := module + "." + name
	switch g.kind {
	case gOrderedDict:
		return &pyFunc{full, func(args []any) (any, error) {
			if len(args) != 0 {
				return nil, fmt.Errorf("%d arguments, want none", len(args))
			}
			return &pyDict{ordered: true}, nil
		}, 48}, nil
	case gRebuildV2:
		return &pyFunc{full, l.rebuildV2, tensorRefCost}, nil
	case gRebuildV3:
		return &pyFunc{full, l.rebuildV3, tensorRefCost}, nil
	case gParameter:
		return &pyFunc{full, rebuildParameter(3), 0}, nil
	case gParameterWithState:
		return &pyFunc{full, rebuildParameter(4), 0}, nil
	case gSize:
		return &pyFunc{full, func(args []any) (any, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("%d arguments", len(args))
			}
			if _, ok := args[0].(*pyTuple); !ok {
				return nil, fmt.Errorf("argument is %s, not a tuple", typeName(args[0]))
			}
			return args[0], nil
		}, 0}, nil
	case gDevice:
		return &pyFunc{full, func(args []any) (any, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("no arguments")
			}
			if s, ok := args[0].(string); ok {
				return s, nil
			}
			return nil, fmt.Errorf("argument is %s, not a string", typeName(args[0]))
		}, 0}, nil
	case gStorage:
		return &storageType{g.dtype}, nil
	case gDType:
		return &dtypeValue{g.dtype}, nil
	}
	return nil, &GlobalError{Module: module, Name: name}
}

// persistentLoad resolves torch's storage ids: ('storage', type, key,
// location, numel) in a zip checkpoint, with a sixth element, the view
// (view key, offset, size) or None, in a legacy one.
func (l *loader) persistentLoad(pid any) (any, error) {
	tp, ok := pid.(*pyTuple)
	if !ok {
		return nil, fmt.Errorf("persistent id is %s, not a tuple", typeName(pid))
	}
	t := tp.items
	if len(t) == 0 {
		return nil, fmt.Errorf("persistent id is an empty tuple, not a storage id")
	}
	if kind, _ := t[0].(string); kind != "storage" {
		return nil, fmt.Errorf("unsupported persistent id %s (a pickled module or class?)", typeName(t[0]))
	}
	want := 5
	if l.legacy {
		want = 6
	}
	if len(t) != want {
		return nil, fmt.Errorf("storage id has %d elements, want %d", len(t), want)
	}
	typ, ok := t[1].(*storageType)
	if !ok {
		return nil, fmt.Errorf("storage type is %s", typeName(t[1]))
	}
	key, ok := t[2].(string)
	if !ok {
		return nil, fmt.Errorf("storage key is %s, not a string", typeName(t[2]))
	}
	numel, err := toInt(t[4])
	if err != nil || numel < 0 {
		return nil, fmt.Errorf("storage %s: element count is %s", quote(key), typeName(t[4]))
	}
	es := int64(max(typ.dtype.Size(), 1)) // untyped storages count bytes
	if numel > math.MaxInt64/es {
		return nil, fmt.Errorf("storage %s: %d elements overflow", quote(key), numel)
	}
	st, err := l.root(key, typ.dtype, numel*es)
	if err != nil {
		return nil, err
	}
	if !l.legacy || t[5] == nil {
		return st, nil
	}
	return l.view(st, t[5], es)
}

func (l *loader) root(key string, dt format.DType, nbytes int64) (*storage, error) {
	if st, ok := l.storages[key]; ok {
		if st.dtype != dt || st.nbytes != nbytes {
			return nil, fmt.Errorf("storage %s is declared as %v of %d bytes and as %v of %d bytes",
				quote(key), st.dtype, st.nbytes, dt, nbytes)
		}
		return st, nil
	}
	st, err := l.resolve(key, nbytes)
	if err != nil {
		return nil, err
	}
	st.key, st.dtype, st.nbytes = key, dt, nbytes
	l.storages[key] = st
	return st, nil
}

// view resolves the view metadata of a legacy storage id: a part of the
// root storage, offset and size counted in its elements.
func (l *loader) view(root *storage, meta any, es int64) (*storage, error) {
	tp, ok := meta.(*pyTuple)
	if !ok || len(tp.items) != 3 {
		return nil, fmt.Errorf("storage %s: view metadata is %s, not a 3-tuple", quote(root.key), typeName(meta))
	}
	t := tp.items
	key, ok := t[0].(string)
	off, err1 := toInt(t[1])
	size, err2 := toInt(t[2])
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("storage %s: view metadata (%s, %s, %s) is not (key, offset, size)",
			quote(root.key), typeName(t[0]), typeName(t[1]), typeName(t[2]))
	}
	if key == root.key {
		return root, nil
	}
	if v, ok := l.views[key]; ok {
		if v.base != root {
			return nil, fmt.Errorf("storage view %s is declared on two storages", quote(key))
		}
		return v, nil
	}
	n := root.nbytes / es
	if off < 0 || size < 0 || off > n || size > n-off {
		return nil, fmt.Errorf("storage view %s of %d elements at %d is outside storage %s of %d", quote(key), size, off, quote(root.key), n)
	}
	v := &storage{key: key, dtype: root.dtype, nbytes: size * es, base: root, baseOff: off * es, off: -1}
	l.views[key] = v
	return v, nil
}

// rebuildV2 is torch._utils._rebuild_tensor_v2(storage, storage_offset,
// size, stride, requires_grad, backward_hooks[, metadata]).
func (l *loader) rebuildV2(args []any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("%d arguments, want 6 or 7", len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("storage argument is %s", typeName(args[0]))
	}
	dt := st.dtype
	if dt == format.Invalid {
		dt = format.U8 // torch reads an untyped storage as uint8
	}
	return tensorArgs(st, dt, args)
}

// rebuildV3 is _rebuild_tensor_v2 with the dtype as seventh argument, which
// torch uses for dtypes that have no storage type of their own.
func (l *loader) rebuildV3(args []any) (any, error) {
	if len(args) != 7 && len(args) != 8 {
		return nil, fmt.Errorf("%d arguments, want 7 or 8", len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("storage argument is %s", typeName(args[0]))
	}
	dt, ok := args[6].(*dtypeValue)
	if !ok {
		return nil, fmt.Errorf("dtype argument is %s", typeName(args[6]))
	}
	if st.dtype != format.Invalid && st.dtype != dt.dtype {
		return nil, fmt.Errorf("tensor of %v on a storage of %v", dt.dtype, st.dtype)
	}
	return tensorArgs(st, dt.dtype, args)
}

func tensorArgs(st *storage, dt format.DType, args []any) (any, error) {
	offset, err := toInt(args[1])
	if err != nil {
		return nil, fmt.Errorf("storage offset: %w", err)
	}
	shape, err := toInts(args[2])
	if err != nil {
		return nil, fmt.Errorf("size: %w", err)
	}
	stride, err := toInts(args[3])
	if err != nil {
		return nil, fmt.Errorf("stride: %w", err)
	}
	// Checked by source, which knows the tensor's name.
	return &tensorRef{st: st, dtype: dt, offset: offset, shape: shape, stride: stride}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks) and, with n = 4, _rebuild_parameter_with_state(…, state).
func rebuildParameter(n int) func([]any) (any, error) {
	return func(args []any) (any, error) {
		if len(args) != n {
			return nil, fmt.Errorf("%d arguments, want %d", len(args), n)
		}
		t, ok := args[0].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("data argument is %s, not a tensor", typeName(args[0]))
		}
		return t, nil
	}
}

func toInt(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case *big.Int:
		return 0, fmt.Errorf("integer %v out of range", v)
	}
	return 0, fmt.Errorf("%s is not an integer", typeName(v))
}

func toInts(v any) ([]int64, error) {
	t, ok := v.(*pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s is not a tuple", typeName(v))
	}
	if len(t.items) > format.MaxRank {
		return nil, fmt.Errorf("rank %d exceeds %d", len(t.items), format.MaxRank)
	}
	out := make([]int64, len(t.items))
	for i := range out {
		n, err := toInt(t.items[i])
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// typeName names the Python type of an unpickled value, for errors. It
// never formats a container: a pickle can make a dict that holds itself, and
// printing one would recurse without end.
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case *tensorRef:
		return "a tensor"
	case *storage:
		return "a storage"
	case *pyDict:
		return "a dict"
	case *pyList:
		return "a list"
	case *pyTuple:
		if len(v.items) == 0 {
			return "an empty tuple"
		}
		return "a tuple"
	case string:
		return quote(v)
	case int64:
		return "the int " + strconv.FormatInt(v, 10)
	case *big.Int:
		return fmt.Sprintf("an int of %d bits", v.BitLen())
	case float64:
		return "a float"
	case bool:
		return "a bool"
	case []byte:
		return "bytes"
	case *storageType, *dtypeValue, *pyFunc:
		return "a torch type or function"
	}
	return fmt.Sprintf("a %T", v)
}

// dictEntries lists a dict's entries in order, a repeated string key
// keeping its first place and its last value as in Python.
func dictEntries(v any) ([]dictEntry, bool) {
	d, ok := v.(*pyDict)
	if !ok {
		return nil, false
	}
	out := make([]dictEntry, 0, len(d.entries))
	seen := make(map[string]int, len(d.entries))
	for _, e := range d.entries {
		if k, ok := e.key.(string); ok {
			if i, dup := seen[k]; dup {
				out[i].value = e.value
				continue
			}
			seen[k] = len(out)
		}
		out = append(out, e)
	}
	return out, true
}

// source turns the unpickled top-level object into tensors and metadata.
func source(top any, r io.ReaderAt, bigEndian bool) (*format.Source, error) {
	entries, ok := dictEntries(top)
	if !ok {
		return nil, fmt.Errorf("checkpoint holds %s, not a dict of tensors", typeName(top))
	}
	src := &format.Source{Metadata: map[string]string{}}
	for _, e := range entries {
		if e.key != "state_dict" {
			continue
		}
		if inner, ok := dictEntries(e.value); ok {
			for _, o := range entries {
				addMetadata(src.Metadata, o)
			}
			entries = inner
		}
		break
	}
	var (
		skipped []string
		refs    []*tensorRef
	)
	for _, e := range entries {
		t, ok := e.value.(*tensorRef)
		if !ok {
			if !addMetadata(src.Metadata, e) {
				if isContainer(e.value) {
					skipped = append(skipped, typeName(e.key))
				}
			}
			continue
		}
		name, ok := e.key.(string)
		if !ok {
			return nil, fmt.Errorf("tensor under a key that is %s, not a string", typeName(e.key))
		}
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", quote(name), err)
		}
		ft, err := format.NewTensor(name, t.dtype, t.shape, t.opener(r, bigEndian))
		if err != nil {
			return nil, err
		}
		ft.Region = t.region()
		src.Tensors = append(src.Tensors, ft)
		refs = append(refs, t)
	}
	if len(src.Tensors) == 0 && len(skipped) > 0 {
		return nil, fmt.Errorf("no tensors at the top level of the checkpoint; nested containers under %s are not read", list(skipped))
	}
	if err := checkAliasing(src.Tensors, refs); err != nil {
		return nil, err
	}
	return src, nil
}

// addMetadata records a string, number or bool entry; it reports whether
// the entry was one.
func addMetadata(md map[string]string, e dictEntry) bool {
	k, ok := e.key.(string)
	if !ok {
		return false
	}
	switch v := e.value.(type) {
	case string:
		md[k] = v
	case int64:
		md[k] = strconv.FormatInt(v, 10)
	case *big.Int:
		md[k] = v.String()
	case float64:
		md[k] = strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		md[k] = map[bool]string{true: "True", false: "False"}[v]
	default:
		return false
	}
	return true
}

func isContainer(v any) bool {
	switch v.(type) {
	case *pyDict, *pyList, *pyTuple:
		return true
	}
	return false
}

// quote is format.Quote: a name from the file, cut short if it is long.
func quote(s string) string { return format.Quote(s) }
