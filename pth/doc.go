// Package pth reads PyTorch checkpoints (.pth, .pt, .bin saved with
// torch.save) without running any of the code a pickle may name.
//
// Both layouts torch.save writes are read: the zip archive of torch ≥ 1.6
// (data.pkl plus one uncompressed record per storage) and the legacy
// sequence of pickles followed by raw storages (torch < 1.6, or
// _use_new_zipfile_serialization=False). Importing the package registers the
// "pth" format with [format.Open]; [Open] reads from any io.ReaderAt.
//
// # Safety
//
// The pickle is first scanned opcode by opcode: only the binary opcodes a
// state dict needs (protocol 2, as torch.save writes it) are accepted, every
// length field must fit in the bytes that are really there, marks may nest
// at most [MaxNesting] deep, and every global must be on a short allowlist
// (collections.OrderedDict, torch's tensor and parameter rebuild functions,
// its storage types and dtypes, torch.Size, torch.device). Any other global is
// refused by name (`unsupported pickle global "os.system"`, see
// [GlobalError]). Only then is the pickle run, by this package's own
// unpickler: it builds inert values and tensor descriptors only, describes
// a value in an error in a few words (never printing a string of the file
// whole, or a container at all), and charges every allocation against a
// budget of 10 bytes per byte of the file plus 1 MiB, refusing a pickle
// that would need more. The tensors of a checkpoint may hold at most 4
// times the bytes of the storages they view (plus 1 MiB): tied weights
// pass, a thousand names on one storage do not.
//
// # Laziness
//
// Tensors stay descriptors (storage, dtype, offset, shape, stride) until
// their bytes are asked for; opening a checkpoint reads its directory and
// its pickle, never its storages. Every offset, size and stride is checked
// against the length of the storage record before anything is read or
// allocated. A contiguous tensor streams straight from its record; a strided
// view (a saved transpose, a column slice) is gathered, which needs memory
// for the tensor plus a read window of at most max(tensor, 1 MiB). Tensors
// may share a storage. Storages of a checkpoint written on a big-endian
// machine (byteorder "big") are byte-swapped on read.
//
// # What becomes of the pickled object
//
// The top-level object must be a dict or OrderedDict. If it holds a
// "state_dict" entry that is itself a dict, the tensors come from that inner
// dict (the {"state_dict": …, "epoch": …} wrapper of training scripts).
// Tensor entries (plain or nn.Parameter) become the source's tensors in the
// dict's order. String, integer, float and boolean entries of either level
// become Metadata, formatted as strings. Every other value — nested dicts,
// lists, None — is skipped; a dict that holds no tensor at all but does hold
// such containers is an error, since its tensors would be lost.
//
// Not read: TorchScript archives, tar checkpoints of the earliest PyTorch
// versions, compressed zip records, sparse and quantized tensors, and
// expanded views (a stride of 0 that makes a tensor larger than its
// storage). Each is refused with an error that says so.
package pth
