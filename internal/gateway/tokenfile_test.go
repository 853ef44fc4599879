package gateway

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("A bearer token read from a file", func() {
	var (
		gw   *testGateway
		file string
	)
	BeforeEach(func(ctx context.Context) {
		file = filepath.Join(GinkgoT().TempDir(), "token")
		Expect(os.WriteFile(file, []byte("first-token\n"), 0o600)).To(Succeed())
		gw = startGateway(ctx, Options{AuthTokenFile: file, TokenReloadInterval: 50 * time.Millisecond})
	})

	statusWith := func(token string) int {
		return gw.get(applicationsPath, "Authorization", "Bearer "+token).status
	}

	It("takes a rotated token without a restart, and refuses the old one", func() {
		Expect(statusWith("first-token")).To(Equal(http.StatusOK))
		// A Secret's mounted file is swapped, not written in place.
		next := file + ".new"
		Expect(os.WriteFile(next, []byte("second-token"), 0o600)).To(Succeed())
		Expect(os.Rename(next, file)).To(Succeed())
		Eventually(statusWith).WithArguments("second-token").WithTimeout(2 * time.Second).Should(Equal(http.StatusOK))
		Expect(statusWith("first-token")).To(Equal(http.StatusUnauthorized))
	})

	It("takes a token of the same length written in place with the same modification time", func() {
		Expect(statusWith("first-token")).To(Equal(http.StatusOK))
		before, err := os.Stat(file)
		Expect(err).NotTo(HaveOccurred())
		// As a write within one tick of a coarse clock leaves it: nothing but the content differs.
		// Made aside and moved in, so that no reload sees it between the write and the stamp.
		next := file + ".new"
		Expect(os.WriteFile(next, []byte("other-token\n"), 0o600)).To(Succeed())
		Expect(os.Chtimes(next, before.ModTime(), before.ModTime())).To(Succeed())
		Expect(os.Rename(next, file)).To(Succeed())
		Eventually(statusWith).WithArguments("other-token").WithTimeout(2 * time.Second).Should(Equal(http.StatusOK))
		Expect(statusWith("first-token")).To(Equal(http.StatusUnauthorized))
	})

	It("keeps the last token while the file is empty or gone", func() {
		Expect(os.WriteFile(file, nil, 0o600)).To(Succeed())
		Consistently(statusWith).WithArguments("first-token").WithTimeout(300 * time.Millisecond).Should(Equal(http.StatusOK))
		Expect(os.Remove(file)).To(Succeed())
		Consistently(statusWith).WithArguments("first-token").WithTimeout(300 * time.Millisecond).Should(Equal(http.StatusOK))
		Expect(statusWith("")).To(Equal(http.StatusUnauthorized))
	})

	It("refuses to start on an empty token file", func() {
		empty := filepath.Join(GinkgoT().TempDir(), "empty")
		Expect(os.WriteFile(empty, []byte(" \n"), 0o600)).To(Succeed())
		_, err := New(env.Config, Options{Namespace: gw.namespace, AuthTokenFile: empty})
		Expect(err).To(MatchError(ContainSubstring("is empty")))
	})
})
