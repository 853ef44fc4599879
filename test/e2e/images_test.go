package e2e_test

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// What `make images` builds (hack/images): an OCI layout per program, read back here with
// go-containerregistry as a registry or a runtime would read it. Each image must run its program
// as the non-root user from /app, carry the OCI labels, hold a static binary that starts, and
// come out with the same digest when built again from the same commit.
var _ = Describe("make images", Ordered, func() {
	const revision, created = "0123456789abcdef0123456789abcdef01234567", 1764460800
	var first, second string

	BeforeAll(func() {
		dir := GinkgoT().TempDir()
		Expect(programs.Build(dir, map[string]string{"images": "./hack/images"}, GinkgoWriter)).To(Succeed())
		build := func(out string) {
			GinkgoHelper()
			cmd := exec.Command(filepath.Join(dir, "images"), "-out", out, "-version", "v0.1.0", "-revision", revision,
				"-created", strconv.Itoa(created), "-tag", "v0.1.0")
			cmd.Dir = programs.RepoDir
			cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
			Expect(cmd.Run()).To(Succeed())
		}
		first, second = filepath.Join(dir, "first"), filepath.Join(dir, "second")
		began := time.Now()
		build(first)
		build(second)
		AddReportEntry("two builds of the three images took", time.Since(began).String())
	})

	for _, tc := range []struct{ program, image, usage string }{
		{"controller", "loan-controller", "-bank-url"},
		{"gateway", "loan-gateway", "-namespace"},
		{"bank-sim", "bank-sim", "-min-delay"},
	} {
		It("builds "+tc.image+" to run as non-root from /app, labelled, static and reproducible", func() {
			img := onlyImage(filepath.Join(first, tc.program))
			cfg, err := img.ConfigFile()
			Expect(err).NotTo(HaveOccurred())
			Expect(cfg.Config.User).To(Equal("65532:65532"))
			Expect(cfg.Config.Entrypoint).To(Equal([]string{"/app"}))
			Expect(cfg.OS).To(Equal("linux"))
			Expect(cfg.Config.Labels).To(Equal(map[string]string{
				"org.opencontainers.image.source":   "https://github.com/lendo/loan-operator",
				"org.opencontainers.image.version":  "v0.1.0",
				"org.opencontainers.image.revision": revision,
				"org.opencontainers.image.title":    tc.image,
				"org.opencontainers.image.licenses": "Apache-2.0",
			}))
			Expect(cfg.Created.Unix()).To(BeEquivalentTo(created))

			digest, err := img.Digest()
			Expect(err).NotTo(HaveOccurred())
			again, err := onlyImage(filepath.Join(second, tc.program)).Digest()
			Expect(err).NotTo(HaveOccurred())
			Expect(again).To(Equal(digest), "the same commit built twice")
			AddReportEntry(tc.image+" digest", digest.String())

			binary := extract(img, "app", filepath.Join(GinkgoT().TempDir(), tc.program))
			exe, err := elf.Open(binary)
			Expect(err).NotTo(HaveOccurred())
			for _, prog := range exe.Progs {
				Expect(prog.Type).NotTo(Equal(elf.PT_INTERP), "a dynamically linked binary needs a loader the image lacks")
			}
			Expect(exe.Close()).To(Succeed())

			out, err := exec.Command(binary, "--help").CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s --help: %s", tc.program, out)
			Expect(string(out)).To(ContainSubstring(tc.usage))
		})
	}
})

var _ = Describe("make images-push", func() {
	It("pushes an image that a registry serves with the digest of the layout", func() {
		// A registry on loopback, go-containerregistry's own, spoken to over plain HTTP as
		// go-containerregistry does for 127.0.0.1.
		reg := httptest.NewServer(registry.New())
		DeferCleanup(reg.Close)
		host := strings.TrimPrefix(reg.URL, "http://")

		dir := GinkgoT().TempDir()
		Expect(programs.Build(dir, map[string]string{"images": "./hack/images"}, GinkgoWriter)).To(Succeed())
		cmd := exec.Command(filepath.Join(dir, "images"), "-out", filepath.Join(dir, "out"), "-revision", "abc",
			"-programs", "bank-sim", "-registry", host+"/lendo", "-tag", "v0.1.0", "-push")
		cmd.Dir = programs.RepoDir
		cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
		Expect(cmd.Run()).To(Succeed())

		want, err := onlyImage(filepath.Join(dir, "out", "bank-sim")).Digest()
		Expect(err).NotTo(HaveOccurred())
		ref, err := name.ParseReference(host + "/lendo/bank-sim:v0.1.0")
		Expect(err).NotTo(HaveOccurred())
		pushed, err := remote.Image(ref)
		Expect(err).NotTo(HaveOccurred())
		got, err := pushed.Digest()
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(want))
		cfg, err := pushed.ConfigFile()
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Config.Labels).To(HaveKeyWithValue("org.opencontainers.image.revision", "abc"))
	})
})

// onlyImage reads the single image of an OCI layout.
func onlyImage(dir string) v1.Image {
	GinkgoHelper()
	path, err := layout.FromPath(dir)
	Expect(err).NotTo(HaveOccurred())
	index, err := path.ImageIndex()
	Expect(err).NotTo(HaveOccurred())
	manifest, err := index.IndexManifest()
	Expect(err).NotTo(HaveOccurred())
	Expect(manifest.Manifests).To(HaveLen(1))
	Expect(manifest.Manifests[0].Annotations).To(HaveKey("org.opencontainers.image.ref.name"))
	img, err := index.Image(manifest.Manifests[0].Digest)
	Expect(err).NotTo(HaveOccurred())
	return img
}

// extract writes the file at path of the image's filesystem to dest, executable, and returns
// dest.
func extract(img v1.Image, path, dest string) string {
	GinkgoHelper()
	fs := mutate.Extract(img)
	defer func() { _ = fs.Close() }()
	files := tar.NewReader(fs)
	for {
		hdr, err := files.Next()
		if errors.Is(err, io.EOF) {
			Fail("the image has no /" + path)
		}
		Expect(err).NotTo(HaveOccurred())
		if hdr.Name != path {
			continue
		}
		Expect(hdr.Mode & 0o111).NotTo(BeZero())
		out, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY, 0o755)
		Expect(err).NotTo(HaveOccurred())
		_, err = io.Copy(out, files)
		Expect(err).NotTo(HaveOccurred())
		Expect(out.Close()).To(Succeed())
		return dest
	}
}
