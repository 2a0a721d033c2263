// Package vision analyses the images of a post version into one posts.vision.analyzed
// payload: the library the vision stage calls.
//
// What is analysed (Policy): photos, and documents, stickers, videos or animations whose
// stored object is an image (image/jpeg, image/png, image/gif, image/webp by MIME; a
// video counts only when ingest stored a thumbnail image in its place). Media without a
// stored object (no sha256) are not analysable. A post with nothing to analyse makes
// Analyze return ErrNoImages: the stage publishes nothing for it. At most MaxImages
// distinct images per post are analysed; the rest are recorded with reason "limit".
//
// Each image is read from the media object store by sha256. A missing object, one over
// the size cap or one that does not decode is recorded in its item (Reason and Error) and
// the others are still analysed; only a failure to reach the store fails the whole post
// (the stage retries it).
//
// Local analysis is offline and always runs: format and dimensions, dominant colours
// (median cut over a downsampled copy), 64-bit pHash and dHash
// (github.com/corona10/goimagehash, as 16 hex digits), and OCR with Tesseract run as a
// subprocess (-l rus+eng, TSV output for word confidences) under a timeout and a bound on
// concurrent processes. When the tesseract binary or its languages are missing the item
// says "OCR unavailable" and TesseractStatus reports why.
//
// With a Describer (an OpenAI-compatible vision model through services/openaicompat) each
// image is also described: description, labels (≤ 20), objects, scene, is_meme, nsfw. An
// answer that is invalid or rejected keeps the local result and records ProviderError; a
// provider that is unavailable fails the post with an error wrapping
// openaicompat.ErrUnavailable so the stage retries later.
//
// Near-duplicates: an Index of pHashes (multi-index hashing: sub-linear lookups) links an
// image to the closest earlier image of another post within a Hamming distance threshold.
// The index is derived from the log: replay posts.vision.analyzed facts into it with
// AddFact; Seq reports the last log sequence it reflects. Analyze only reads the index: the
// stage adds each fact it publishes (with the sequence the log gave it), and at start
// replays posts.vision.analyzed into a fresh index, so a live index and a rebuilt one link
// alike.
//
// An Analyzer, a Tesseract and an Index are safe for concurrent use; a stage may analyse
// many posts at once, the tesseract processes stay within TesseractConfig.MaxProcs.
package vision
