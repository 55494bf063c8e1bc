#ifndef CAREHUB_COPENSSL_SHIM_H
#define CAREHUB_COPENSSL_SHIM_H

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/cms.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Macros and variadic helpers Swift cannot import directly. */

static inline int carehub_gcm_set_ivlen(EVP_CIPHER_CTX *ctx, int length) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, length, NULL);
}

static inline int carehub_gcm_get_tag(EVP_CIPHER_CTX *ctx, int length, unsigned char *tag) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, length, tag);
}

static inline int carehub_gcm_set_tag(EVP_CIPHER_CTX *ctx, int length, unsigned char *tag) {
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, length, tag);
}

/* HKDF-SHA256 (RFC 5869) through the EVP_KDF interface. */
static inline int carehub_hkdf_sha256(const unsigned char *key, size_t key_len,
                                      const unsigned char *salt, size_t salt_len,
                                      const unsigned char *info, size_t info_len,
                                      unsigned char *out, size_t out_len) {
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (kdf == NULL) return 0;
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (ctx == NULL) return 0;
    OSSL_PARAM params[5];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[4] = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(ctx, out, out_len, params);
    EVP_KDF_CTX_free(ctx);
    return ok;
}

/* HMAC through EVP_MAC; digest is "SHA256" or "SHA1". */
static inline int carehub_hmac(const char *digest,
                               const unsigned char *key, size_t key_len,
                               const unsigned char *data, size_t data_len,
                               unsigned char *out, size_t out_capacity, size_t *out_len) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) return 0;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (ctx == NULL) return 0;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    int ok = EVP_MAC_init(ctx, key, key_len, params)
        && EVP_MAC_update(ctx, data, data_len)
        && EVP_MAC_final(ctx, out, out_len, out_capacity);
    EVP_MAC_CTX_free(ctx);
    return ok;
}

/* Encrypts `in` as CMS AuthEnvelopedData (AES-256-GCM; the content key wrapped to the certificate's
 * public key), DER-encoded, so that `openssl cms -decrypt -inform DER -inkey KEY` opens it.
 * Returns 0 and a malloc'd buffer the caller frees; -1 certificate file unreadable, -2 not a PEM
 * certificate, -3 encryption failed. */
static inline int carehub_cms_encrypt(const char *certificate_path, const unsigned char *in, size_t in_length,
                                      unsigned char **out, size_t *out_length) {
    FILE *file = fopen(certificate_path, "r");
    if (file == NULL) return -1;
    X509 *certificate = PEM_read_X509(file, NULL, NULL, NULL);
    fclose(file);
    if (certificate == NULL) return -2;
    STACK_OF(X509) *recipients = sk_X509_new_null();
    sk_X509_push(recipients, certificate);
    BIO *input = BIO_new_mem_buf(in, (int)in_length);
    CMS_ContentInfo *cms = CMS_encrypt(recipients, input, EVP_aes_256_gcm(), CMS_BINARY);
    int status = -3;
    if (cms != NULL) {
        BIO *output = BIO_new(BIO_s_mem());
        if (i2d_CMS_bio(output, cms) == 1) {
            char *data = NULL;
            long length = BIO_get_mem_data(output, &data);
            *out = malloc((size_t)length);
            if (*out != NULL) {
                memcpy(*out, data, (size_t)length);
                *out_length = (size_t)length;
                status = 0;
            }
        }
        BIO_free(output);
        CMS_ContentInfo_free(cms);
    }
    BIO_free(input);
    sk_X509_pop_free(recipients, X509_free);
    return status;
}

#endif
