package evidence

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaylock/relaylock/internal/atomicfile"
)

// SignatureSchema is Signature.Schema.
const SignatureSchema = "relaylock.signature/v1"

// ErrBadSignature: the signed manifest does not verify.
var ErrBadSignature = errors.New("signature does not verify")

// Signature is the signed manifest written next to the evidence file
// (FILE.sig.json). It binds the evidence file and the report by their
// SHA-256 to an Ed25519 key.
type Signature struct {
	Schema string `json:"schema"` // SignatureSchema
	// Evidence is the evidence file as it was when signed.
	Evidence SignedFile `json:"evidence"`
	// Digest is the evidence content digest (what the PDF prints).
	Digest string `json:"digest"`
	// Report is the PDF report, if one was signed with the evidence.
	Report *SignedFile `json:"report,omitempty"`
	// Signed is when the manifest was signed (UTC).
	Signed time.Time `json:"signed"`
	// PublicKey is the base64 raw Ed25519 public key.
	PublicKey string `json:"public_key"`
	// Fingerprint is "SHA256:" and the hex SHA-256 of the raw public key.
	Fingerprint string `json:"fingerprint"`
	// Sig is the base64 Ed25519 signature over SignedMessage.
	Sig string `json:"signature"`
}

// SignedFile names a file by base name and SHA-256.
type SignedFile struct {
	Name   string `json:"name"`   // base name, looked up next to the evidence file
	SHA256 string `json:"sha256"` // hex SHA-256 of the file's bytes when signed
}

// SignaturePath is where Sign writes the manifest of an evidence file.
func SignaturePath(bundlePath string) string { return bundlePath + ".sig.json" }

// SignedMessage is the exact byte string the signature covers: one
// "key value" line per field, in this order.
func (s *Signature) SignedMessage() []byte {
	var b strings.Builder
	b.WriteString(s.Schema + "\n")
	b.WriteString("evidence " + s.Evidence.SHA256 + " " + s.Evidence.Name + "\n")
	b.WriteString("digest " + s.Digest + "\n")
	if s.Report != nil {
		b.WriteString("report " + s.Report.SHA256 + " " + s.Report.Name + "\n")
	}
	b.WriteString("signed " + s.Signed.UTC().Format(time.RFC3339) + "\n")
	b.WriteString("key " + s.PublicKey + "\n")
	return []byte(b.String())
}

// Fingerprint returns "SHA256:" and the hex SHA-256 of the raw public key.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// GenerateKey writes a new Ed25519 key pair: the private key as PKCS #8
// PEM to path (mode 0600, never overwriting) and the public key as PKIX
// PEM to path + ".pub". It returns the public key.
func GenerateKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	for _, p := range []string{path, path + ".pub"} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("write key: %s: %w", p, os.ErrExist)
		}
	}
	if err := atomicfile.CreateFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return nil, fmt.Errorf("write private key: %w", err)
	}
	if err := atomicfile.CreateFile(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}), 0o644); err != nil {
		return nil, fmt.Errorf("write public key: %w", err)
	}
	return pub, nil
}

// LoadPrivateKey reads a PKCS #8 PEM Ed25519 private key.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := atomicfile.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("read key %s: not a PEM \"PRIVATE KEY\" (make one with relaylock keygen)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("read key %s: %T is not an Ed25519 key", path, k)
	}
	return priv, nil
}

// LoadPublicKey reads a PKIX PEM Ed25519 public key (KEY.pub).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := atomicfile.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("read public key %s: not a PEM \"PUBLIC KEY\"", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read public key %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("read public key %s: %T is not an Ed25519 key", path, k)
	}
	return pub, nil
}

// Sign writes the signed manifest SignaturePath(bundlePath) over the
// evidence file and, if reportPath is not empty, the report. Call it after
// the last write to either file.
func Sign(bundlePath, reportPath, keyPath string) (*Signature, error) {
	priv, err := LoadPrivateKey(keyPath)
	if err != nil {
		return nil, err
	}
	// Sign exactly the bytes that verified: a modified file is refused.
	data, err := atomicfile.ReadFile(bundlePath)
	if err != nil {
		return nil, fmt.Errorf("read evidence: %w", err)
	}
	_, r, err := verifyData(bundlePath, data)
	if err != nil {
		return nil, err
	}
	digest := r.Digest
	sum := sha256.Sum256(data)
	eh := hex.EncodeToString(sum[:])
	pub := priv.Public().(ed25519.PublicKey)
	s := &Signature{
		Schema:      SignatureSchema,
		Evidence:    SignedFile{Name: filepath.Base(bundlePath), SHA256: eh},
		Digest:      digest,
		Signed:      now().UTC().Truncate(time.Second),
		PublicKey:   base64.StdEncoding.EncodeToString(pub),
		Fingerprint: Fingerprint(pub),
	}
	if reportPath != "" {
		rh, err := SHA256File(reportPath)
		if err != nil {
			return nil, err
		}
		s.Report = &SignedFile{Name: filepath.Base(reportPath), SHA256: rh}
	}
	s.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, s.SignedMessage()))
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(SignaturePath(bundlePath), append(out, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write signature: %w", err)
	}
	return s, nil
}

// SignatureCheck is the outcome of VerifySignature.
type SignatureCheck struct {
	Signature *Signature // the manifest as read
	OK        []string   // what verified, one line each
	Problems  []string   // every failure, one line each; empty means verified
	Notes     []string   // facts that are not failures (report not present)
}

// VerifySignature reads SignaturePath(bundlePath), checks the Ed25519
// signature with the public key it carries (and, if trusted is not nil,
// that the key is trusted), and checks that the evidence file and the
// report (looked up by name next to the evidence file) still have the
// signed hashes. It returns fs.ErrNotExist (wrapped) when there is no
// signature file.
func VerifySignature(bundlePath string, trusted ed25519.PublicKey) (*SignatureCheck, error) {
	return VerifySignatureDigest(bundlePath, "", trusted)
}

// VerifySignatureDigest is VerifySignature for an evidence file whose
// content digest (as recomputed from the file) is digest: when the file is
// not the one signed, it says whether the signature was made for other
// content (another evidence file, or this one before records were added
// to it), with both digests, or for this content with only the artifacts
// or log since added.
func VerifySignatureDigest(bundlePath, digest string, trusted ed25519.PublicKey) (*SignatureCheck, error) {
	data, err := atomicfile.ReadFile(SignaturePath(bundlePath))
	if err != nil {
		return nil, fmt.Errorf("read signature: %w", err)
	}
	var s Signature
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read signature %s: %w", SignaturePath(bundlePath), err)
	}
	if s.Schema != SignatureSchema {
		return nil, fmt.Errorf("read signature %s: unknown schema %q", SignaturePath(bundlePath), s.Schema)
	}
	c := &SignatureCheck{Signature: &s}
	pub, err := base64.StdEncoding.DecodeString(s.PublicKey)
	sig, err2 := base64.StdEncoding.DecodeString(s.Sig)
	switch {
	case err != nil || len(pub) != ed25519.PublicKeySize:
		c.Problems = append(c.Problems, "signature: public key is not a base64 Ed25519 key")
	case err2 != nil || !ed25519.Verify(pub, s.SignedMessage(), sig):
		c.Problems = append(c.Problems, fmt.Sprintf("signature: %v (key %s)", ErrBadSignature, Fingerprint(pub)))
	default:
		c.OK = append(c.OK, "signature: valid, key "+Fingerprint(pub))
		if s.Fingerprint != Fingerprint(pub) {
			c.Problems = append(c.Problems, fmt.Sprintf("signature: recorded fingerprint %s is not the key's %s", s.Fingerprint, Fingerprint(pub)))
		}
		if trusted != nil && !ed25519.PublicKey(pub).Equal(trusted) {
			c.Problems = append(c.Problems, fmt.Sprintf("signature: signed by key %s, not by the trusted key %s", Fingerprint(pub), Fingerprint(trusted)))
		}
	}
	dir := filepath.Dir(bundlePath)
	if h, err := SHA256File(bundlePath); err != nil {
		c.Problems = append(c.Problems, err.Error())
	} else if h != s.Evidence.SHA256 {
		switch {
		case digest != "" && s.Digest != digest && s.Evidence.Name != filepath.Base(bundlePath):
			c.Problems = append(c.Problems, fmt.Sprintf("signature: made for another evidence file, %s with digest %s; this file (%s) has digest %s", s.Evidence.Name, s.Digest, filepath.Base(bundlePath), digest))
		case digest != "" && s.Digest != digest:
			c.Problems = append(c.Problems, fmt.Sprintf("signature: evidence file changed since signing, or the signature was made for another evidence file: signed digest %s, this file's digest %s", s.Digest, digest))
		case digest != "":
			c.Problems = append(c.Problems, fmt.Sprintf("signature: evidence file changed since signing (same digest %s: only the artifacts or the log differ): file sha256 %s, signed %s", digest, h, s.Evidence.SHA256))
		default:
			c.Problems = append(c.Problems, fmt.Sprintf("signature: evidence file changed since signing: file sha256 %s, signed %s", h, s.Evidence.SHA256))
		}
	} else {
		c.OK = append(c.OK, "signature: evidence file sha256 "+h+" as signed")
	}
	if s.Report != nil {
		rp := filepath.Join(dir, filepath.Base(s.Report.Name))
		if h, err := SHA256File(rp); err != nil {
			c.Notes = append(c.Notes, fmt.Sprintf("signature: report %s not present, hash not checked", s.Report.Name))
		} else if h != s.Report.SHA256 {
			c.Problems = append(c.Problems, fmt.Sprintf("signature: report %s changed since signing: file sha256 %s, signed %s", rp, h, s.Report.SHA256))
		} else {
			c.OK = append(c.OK, fmt.Sprintf("signature: report %s file sha256 %s as signed", rp, h))
		}
	}
	return c, nil
}

// RecordArtifact records the file at path (a report) in the evidence file
// at bundlePath with its SHA-256, size and the evidence digest it was
// produced from, replacing an earlier record of the same path, and logs
// it. kind is ArtifactReport for a PDF report.
func RecordArtifact(ctx context.Context, bundlePath, path, kind string) (*Artifact, error) {
	return RecordRendered(ctx, bundlePath, path, kind, Rendering{})
}

// RecordRendered is RecordArtifact for a file rendered with what the
// evidence does not hold (a client name, custom texts): they are recorded
// in the artifact and named in the log entry.
func RecordRendered(ctx context.Context, bundlePath, path, kind string, rd Rendering) (*Artifact, error) {
	sum, err := SHA256File(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("record artifact: %w", err)
	}
	var a Artifact
	err = Update(ctx, bundlePath, func(b *Bundle) error {
		digest, err := b.Digest()
		if err != nil {
			return err
		}
		a = Artifact{Name: filepath.Base(path), Path: path, SHA256: sum, Size: fi.Size(),
			Created: now().UTC().Truncate(time.Second), Kind: kind, EvidenceDigest: digest,
			Client: rd.Client, TemplateSHA256: rd.TemplateSHA256}
		replaced := false
		for i := range b.Artifacts {
			if b.Artifacts[i].Path == path {
				b.Artifacts[i], replaced = a, true
			}
		}
		if !replaced {
			b.Artifacts = append(b.Artifacts, a)
		}
		msg := fmt.Sprintf("wrote %s (sha256 %s) from evidence digest %s", a.Name, sum, digest)
		if rd.Client != "" {
			msg += fmt.Sprintf(", with client name %q given when rendering", rd.Client)
		}
		if rd.TemplateSHA256 != "" {
			msg += ", with custom texts sha256 " + rd.TemplateSHA256
		}
		b.Log = append(b.Log, LogEntry{Time: a.Created, Step: kind, Message: msg})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}
