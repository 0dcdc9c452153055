#!/usr/bin/env python3
"""Inputs for t/fastsig-miss.t: device certificates the nginx worker has never
seen, good and bad in every way the first sight of a certificate
(ngx_http_mdm_fastsig_chain.c) must either get right or leave to the full
path, each in a detached CMS SignedData over its own body.

    fastsig_miss_gen.py PKI_DIR BODY_TEMPLATE OUT_JSONL SEED FLIPS

Certificates and CMS are encoded here by hand (so that they can be bent
anywhere: non-minimal DER, odd extensions, bad signatures); the keys and
signatures come from python3-cryptography.  Writes PKI_DIR/miss-ca.pem, the
mdm_identity_ca bundle (the test PKI's root and intermediate plus the CAs
made here), and one JSON line per input: {"label", "body", "sig"}.
"""

import base64
import datetime
import hashlib
import json
import random
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


# --- DER ---------------------------------------------------------------

def der_len(n, long_form=False):
    if n < 0x80 and not long_form:
        return bytes([n])
    b = n.to_bytes(max(1, (n.bit_length() + 7) // 8), 'big')
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content, long_form=False):
    return bytes([tag]) + der_len(len(content), long_form) + content


def seq(*items, long_form=False):
    return tlv(0x30, b''.join(items), long_form)


def der_set(*items):
    return tlv(0x31, b''.join(sorted(items)))


def oid(dotted):
    parts = [int(x) for x in dotted.split('.')]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7f]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7f))
            p >>= 7
        out += bytes(reversed(enc))
    return tlv(0x06, out)


def integer(v, pad=b''):
    if v < 0:
        n = (v.bit_length() + 8) // 8
        b = v.to_bytes(n, 'big', signed=True)
    else:
        b = v.to_bytes((v.bit_length() + 8) // 8 or 1, 'big')
    return tlv(0x02, pad + b)


def utctime(t):
    return tlv(0x17, time.strftime('%y%m%d%H%M%SZ', time.gmtime(t)).encode())


def gentime(t):
    return tlv(0x18, time.strftime('%Y%m%d%H%M%SZ', time.gmtime(t)).encode())


NULL = b'\x05\x00'
SHA256_RSA = seq(oid('1.2.840.113549.1.1.11'), NULL)
SHA384_RSA = seq(oid('1.2.840.113549.1.1.12'), NULL)
SHA1_RSA = seq(oid('1.2.840.113549.1.1.5'), NULL)
ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'))
ECDSA_SHA384 = seq(oid('1.2.840.10045.4.3.3'))

CN = '2.5.4.3'
O = '2.5.4.10'


def name(*rdns, tag=0x0c):
    return seq(*[der_set(seq(oid(t), tlv(tag, v.encode('utf-8'))))
                 for t, v in rdns])


def ext(oid_s, value, critical=False, crit_false=False):
    flag = b'\x01\x01\xff' if critical else (b'\x01\x01\x00' if crit_false
                                             else b'')
    return seq(oid(oid_s), flag, tlv(0x04, value))


def bc(ca=False, pathlen=None):
    inner = b''
    if ca:
        inner += b'\x01\x01\xff'
    if pathlen is not None:
        inner += integer(pathlen)
    return ext('2.5.29.19', tlv(0x30, inner), critical=True)


def ku(bits, trailing_zero=False):
    """bits: an int of the two KU bytes as OpenSSL reads them (0x80:
    digitalSignature, 0x20: keyEncipherment, 0x08: keyAgreement, 0x04:
    keyCertSign, 0x02: cRLSign)"""
    b = bytes([bits & 0xff]) + (bytes([bits >> 8]) if bits >> 8 else b'')
    unused = 0
    last = b[-1]
    while last and not last & 1:
        unused += 1
        last >>= 1
    if trailing_zero:
        b += b'\x00'
        unused = 0
    return ext('2.5.29.15', tlv(0x03, bytes([unused]) + b), critical=True)


def eku(*oids):
    return ext('2.5.29.37', seq(*[oid(o) for o in oids]))


CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
ANY_EKU = '2.5.29.37.0'


def skid(pub):
    return ext('2.5.29.14', tlv(0x04, key_id(pub)))


def akid(kid):
    return ext('2.5.29.35', seq(tlv(0x80, kid)))


def key_id(pub):
    spki = pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    # the BIT STRING's content, as OpenSSL's "hash" does: close enough, any
    # stable identifier will do for the tests
    return hashlib.sha1(spki).digest()


def spki(pub):
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(key, data, alg):
    if isinstance(key, rsa.RSAPrivateKey):
        h = {SHA256_RSA: hashes.SHA256(), SHA384_RSA: hashes.SHA384(),
             SHA1_RSA: hashes.SHA1()}.get(alg, hashes.SHA256())
        return key.sign(data, padding.PKCS1v15(), h)
    h = hashes.SHA384() if alg == ECDSA_SHA384 else hashes.SHA256()
    return key.sign(data, ec.ECDSA(h))


class CA:
    def __init__(self, cert_der, key, subject_der, kid):
        self.der = cert_der
        self.key = key
        self.subject = subject_der
        self.kid = kid
        self.alg = SHA256_RSA if isinstance(key, rsa.RSAPrivateKey) \
            else ECDSA_SHA256


def load_ca(pem_path, key_path):
    c = x509.load_pem_x509_certificate(open(pem_path, 'rb').read())
    k = serialization.load_pem_private_key(open(key_path, 'rb').read(), None)
    try:
        kid = c.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        kid = None
    return CA(c.public_bytes(serialization.Encoding.DER), k,
              c.subject.public_bytes(), kid)


def cert(issuer, subject, pub, exts, nb, na, serial, alg=None,
         version=b'\xa0\x03\x02\x01\x02', tbs_alg=None, times=None,
         serial_der=None, tamper=None, sig_flip=False, trailing=b'',
         ext_wrap=True, long_tbs=False):
    alg = alg or issuer.alg
    tbs_alg = tbs_alg or alg
    validity = times or seq(utctime(nb), utctime(na))
    body = (version + (serial_der or integer(serial)) + tbs_alg
            + issuer.subject + validity + subject + spki(pub))
    if exts is not None:
        body += tlv(0xa3, seq(*exts)) if ext_wrap else exts
    tbs = tlv(0x30, body, long_form=long_tbs)
    sig = sign(issuer.key, tbs, alg)
    if tamper:
        tbs = tamper(tbs)
    if sig_flip:
        sig = sig[:-5] + bytes([sig[-5] ^ 0x01]) + sig[-4:]
    return seq(tbs, alg, tlv(0x03, b'\x00' + sig), trailing)


def make_ca(issuer, cn, key, nb, na, serial, ca_exts=None, self_signed=False):
    subject = name((O, 'ngx_mdm tests'), (CN, cn), tag=0x13)
    kid = key_id(key.public_key())
    exts = ca_exts if ca_exts is not None else [
        bc(ca=True), ku(0x06), ext('2.5.29.14', tlv(0x04, kid))]
    if issuer is not None and issuer.kid:
        exts = exts + [akid(issuer.kid)]
    me = CA(None, key, subject, kid)
    signer = me if self_signed else issuer
    der = cert(signer, subject, key.public_key(), exts, nb, na, serial)
    me.der = der
    return me


def pem(der):
    b = base64.encodebytes(der).decode().replace('\n', '')
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return '-----BEGIN CERTIFICATE-----\n' + '\n'.join(lines) \
        + '\n-----END CERTIFICATE-----\n'


# --- CMS -----------------------------------------------------------------

def cms(body, cert_der, issuer_subject, serial_der, key, signing_time,
        md='sha256'):
    h = {'sha256': hashlib.sha256, 'sha384': hashlib.sha384}[md]
    md_alg = seq(oid({'sha256': '2.16.840.1.101.3.4.2.1',
                      'sha384': '2.16.840.1.101.3.4.2.2'}[md]))
    attrs = [
        seq(oid('1.2.840.113549.1.9.3'), der_set(oid('1.2.840.113549.1.7.1'))),
        seq(oid('1.2.840.113549.1.9.5'), der_set(utctime(signing_time))),
        seq(oid('1.2.840.113549.1.9.4'), der_set(tlv(0x04, h(body).digest()))),
    ]
    signed = der_set(*attrs)
    hh = hashes.SHA384() if md == 'sha384' else hashes.SHA256()
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(signed, padding.PKCS1v15(), hh)
        sig_alg = seq(oid('1.2.840.113549.1.1.1'), NULL)
    else:
        sig = key.sign(signed, ec.ECDSA(hh))
        sig_alg = seq(oid('1.2.840.10045.4.3.2' if md == 'sha256'
                          else '1.2.840.10045.4.3.3'))
    si = seq(integer(1), seq(issuer_subject, serial_der), md_alg,
             tlv(0xa0, b''.join(sorted(attrs))), sig_alg, tlv(0x04, sig))
    sd = seq(integer(1), der_set(md_alg), seq(oid('1.2.840.113549.1.7.1')),
             tlv(0xa0, cert_der), der_set(si))
    return seq(oid('1.2.840.113549.1.7.2'), tlv(0xa0, sd))


# --- the inputs ------------------------------------------------------------

def main():
    pki, template, out, seed, flips = sys.argv[1:6]
    rng = random.Random(int(seed))
    flips = int(flips)
    now = int(time.time())
    year = 365 * 86400
    body_t = open(template, 'rb').read()

    root = load_ca(pki + '/ca.pem', pki + '/ca.key')
    inter = load_ca(pki + '/int.pem', pki + '/int.key')
    rogue = load_ca(pki + '/rogue-ca.pem', pki + '/rogue-ca.key')

    def rsa_key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    ec_key = ec.generate_private_key(ec.SECP256R1())
    dev_keys = [rsa_key() for _ in range(4)]
    serials = iter(range(0x10000, 0x7fffffff))

    # CAs of our own, in the bundle beside the test PKI's
    root2 = make_ca(None, 'Miss Root 2', rsa_key(), now - 5 * year,
                    now + 20 * year, next(serials), self_signed=True)
    mid2 = make_ca(root2, 'Miss Mid 2', rsa_key(), now - year, now + 5 * year,
                   next(serials))
    sub2 = make_ca(mid2, 'Miss Sub 2', rsa_key(), now - year, now + 5 * year,
                   next(serials))
    deep = make_ca(inter, 'Miss Under Int', rsa_key(), now - year,
                   now + 5 * year, next(serials))          # pathlen:0 broken
    old_int = make_ca(root2, 'Miss Expired Int', rsa_key(), now - 3 * year,
                      now - year, next(serials))
    srv_int = make_ca(root2, 'Miss Server Int', rsa_key(), now - year,
                      now + 5 * year, next(serials),
                      ca_exts=[bc(ca=True), ku(0x06), eku(SERVER_AUTH)])
    nosign_int = make_ca(root2, 'Miss No CertSign Int', rsa_key(), now - year,
                         now + 5 * year, next(serials),
                         ca_exts=[bc(ca=True), ku(0x02)])
    twin_a = make_ca(root2, 'Miss Twin', rsa_key(), now - year,
                     now + 5 * year, next(serials))
    twin_b = make_ca(root2, 'Miss Twin', rsa_key(), now - year,
                     now + 5 * year, next(serials))
    ecroot = make_ca(None, 'Miss EC Root', ec.generate_private_key(
        ec.SECP256R1()), now - 5 * year, now + 20 * year, next(serials),
        self_signed=True)
    ecmid = make_ca(ecroot, 'Miss EC Mid', ec.generate_private_key(
        ec.SECP384R1()), now - year, now + 5 * year, next(serials))

    with open(pki + '/miss-ca.pem', 'w') as f:
        f.write(open(pki + '/identity-ca.pem').read())
        for c in (root2, mid2, sub2, deep, old_int, srv_int, nosign_int,
                  twin_a, twin_b, ecroot, ecmid):
            f.write(pem(c.der))

    n = [0]
    lines = []

    def emit(label, made, signing_time=None, md='sha256', body_of=None,
             issuer_serial=None, key=None):
        cert_der, dkey, iss, ser = made
        n[0] += 1
        udid = ('MISS-%05d' % n[0]).encode()
        body = body_t.replace(b'MISS-TEMPLATE', udid)
        iss, ser = issuer_serial or (iss, ser)
        sig = cms(body if body_of is None else body_of, cert_der, iss, ser,
                  key or dkey, signing_time or now, md)
        lines.append({'label': label, 'body': body.decode(),
                      'sig': base64.b64encode(sig).decode()})
        return sig, body

    def subj(i, label):
        return name((CN, 'miss %d %s' % (i, label)))

    def std_exts(pub, issuer):
        return [bc(), ku(0xa0), eku(CLIENT_AUTH), skid(pub),
                akid(issuer.kid)]

    def leaf(i, label, issuer=inter, key=None, exts=None, nb=None, na=None,
             **kw):
        key = key or dev_keys[i % len(dev_keys)]
        pub = key.public_key()
        e = std_exts(pub, issuer) if exts is None else exts(pub, issuer)
        sd = kw.pop('serial_der', None) or integer(next(serials))
        der = cert(issuer, kw.pop('subject', None) or subj(i, label), pub,
                   e, now - 86400 if nb is None else nb,
                   now + year if na is None else na, 0, serial_der=sd, **kw)
        return der, key, issuer.subject, sd

    def case(i, label, **kw):
        signing_time = kw.pop('signing_time', None)
        md = kw.pop('md', 'sha256')
        return emit('%s %d' % (label, i), leaf(i, label, **kw),
                    signing_time, md)

    rounds = 12
    good_sigs = []
    for i in range(rounds):
        good_sigs.append(case(i, 'good'))
        case(i, 'good sha384 request', md='sha384')
        case(i, 'from the root', issuer=root)
        case(i, 'from root2 directly', issuer=root2)
        case(i, 'via mid2', issuer=mid2)
        case(i, 'via mid2 and sub2', issuer=sub2)
        case(i, 'pathlen exceeded', issuer=deep)
        case(i, 'expired intermediate', issuer=old_int)
        case(i, 'server-only intermediate', issuer=srv_int)
        case(i, 'intermediate without keyCertSign', issuer=nosign_int)
        case(i, 'twin intermediate a', issuer=twin_a)
        case(i, 'twin intermediate b', issuer=twin_b)
        case(i, 'EC root', issuer=ecroot)
        case(i, 'EC root sha384', issuer=ecroot, alg=ECDSA_SHA384)
        case(i, 'EC mid', issuer=ecmid)
        case(i, 'EC device key', key=ec_key)
        case(i, 'wrong CA', issuer=rogue)
        case(i, 'expired', nb=now - 2 * year, na=now - 86400)
        case(i, 'just expired', nb=now - year, na=now - 2)
        case(i, 'about to expire', nb=now - year, na=now + 300)
        case(i, 'not yet valid', nb=now + 3600)
        case(i, 'not yet valid, within skew', nb=now + 60, signing_time=now + 70)
        case(i, 'not yet valid, within skew, signed before', nb=now + 60,
             signing_time=now - 400)
        case(i, 'notAfter before notBefore', nb=now + 60, na=now + 30)
        case(i, 'generalized time', times=seq(gentime(now - 86400),
                                               gentime(now + year)))
        case(i, 'generalized time 2050', times=seq(utctime(now - 86400),
                                                    gentime(2556143999 + i)))
        case(i, 'time without seconds', times=seq(
            tlv(0x17, time.strftime('%y%m%d%H%MZ', time.gmtime(now - 86400)).encode()),
            utctime(now + year)))
        case(i, 'time with offset', times=seq(
            tlv(0x17, time.strftime('%y%m%d%H%M%S+0100', time.gmtime(now - 86400)).encode()),
            utctime(now + year)))
        case(i, 'server auth only', exts=lambda p, s: [
            bc(), ku(0xa0), eku(SERVER_AUTH), skid(p), akid(s.kid)])
        case(i, 'anyExtendedKeyUsage', exts=lambda p, s: [
            bc(), ku(0xa0), eku(ANY_EKU), skid(p), akid(s.kid)])
        case(i, 'clientAuth among others', exts=lambda p, s: [
            bc(), ku(0xa0), eku(SERVER_AUTH, CLIENT_AUTH), skid(p), akid(s.kid)])
        case(i, 'no EKU', exts=lambda p, s: [bc(), ku(0xa0), skid(p), akid(s.kid)])
        case(i, 'keyEncipherment only', exts=lambda p, s: [
            bc(), ku(0x20), eku(CLIENT_AUTH), skid(p), akid(s.kid)])
        case(i, 'keyAgreement only', exts=lambda p, s: [
            bc(), ku(0x08), eku(CLIENT_AUTH), skid(p), akid(s.kid)])
        case(i, 'KU with a trailing zero byte', exts=lambda p, s: [
            bc(), ku(0xa0, trailing_zero=True), eku(CLIENT_AUTH), skid(p),
            akid(s.kid)])
        case(i, 'KU decipherOnly too', exts=lambda p, s: [
            bc(), ku(0x80a0), eku(CLIENT_AUTH), skid(p), akid(s.kid)])
        case(i, 'no KU', exts=lambda p, s: [bc(), eku(CLIENT_AUTH), skid(p)])
        case(i, 'no extensions but v3', exts=lambda p, s: [])
        case(i, 'CA:TRUE leaf', exts=lambda p, s: [
            bc(ca=True), ku(0xa0), eku(CLIENT_AUTH), skid(p), akid(s.kid)])
        case(i, 'unknown critical extension', exts=lambda p, s: std_exts(p, s)
             + [ext('1.2.3.4.5', b'\x05\x00', critical=True)])
        case(i, 'unknown extension', exts=lambda p, s: std_exts(p, s)
             + [ext('1.2.840.113635.100.6.99', b'\x05\x00')])
        case(i, 'critical FALSE spelled out', exts=lambda p, s: std_exts(p, s)
             + [ext('1.2.840.113635.100.6.98', b'\x05\x00', crit_false=True)])
        case(i, 'subjectAltName', exts=lambda p, s: std_exts(p, s)
             + [ext('2.5.29.17', seq(tlv(0x82, b'device.example')))])
        case(i, 'subjectAltName, critical, email and IP', exts=lambda p, s: std_exts(p, s)
             + [ext('2.5.29.17', seq(tlv(0x81, b'dev@example.com'),
                                     tlv(0x87, b'\x7f\x00\x00\x01')), critical=True)])
        case(i, 'subjectAltName otherName', exts=lambda p, s: std_exts(p, s)
             + [ext('2.5.29.17', seq(tlv(0xa0, oid('1.3.6.1.4.1.311.20.2.3')
                                         + tlv(0xa0, tlv(0x0c, b'upn@example')))))])
        case(i, 'subjectAltName IP of 5 bytes', exts=lambda p, s: std_exts(p, s)
             + [ext('2.5.29.17', seq(tlv(0x87, b'\x7f\x00\x00\x01\x02')))])
        case(i, 'empty subjectAltName', exts=lambda p, s: std_exts(p, s)
             + [ext('2.5.29.17', seq())])
        case(i, 'bad subjectAltName', exts=lambda p, s: std_exts(p, s)
             + [ext('2.5.29.17', b'\x30\x03\x82')])
        case(i, 'nsCertType server', exts=lambda p, s: std_exts(p, s)
             + [ext('2.16.840.1.113730.1.1', b'\x03\x02\x06\x40')])
        case(i, 'duplicate extension', exts=lambda p, s: std_exts(p, s)
             + [eku(CLIENT_AUTH)])
        case(i, 'AKID of another key', exts=lambda p, s: [
            bc(), ku(0xa0), eku(CLIENT_AUTH), skid(p), akid(b'\x01' * 20)])
        case(i, 'AKID with issuer and serial', exts=lambda p, s: [
            bc(), ku(0xa0), eku(CLIENT_AUTH), skid(p),
            ext('2.5.29.35', seq(tlv(0x80, s.kid), tlv(0xa1, tlv(0xa4, s.subject)),
                                 tlv(0x82, b'\x01')))])
        case(i, 'v1 certificate', exts=lambda p, s: None, version=b'')
        case(i, 'bad certificate signature', sig_flip=True)
        case(i, 'serial changed after signing',
             tamper=lambda t: t[:12] + bytes([t[12] ^ 0x01]) + t[13:])
        case(i, 'sha1WithRSA', alg=SHA1_RSA)
        case(i, 'sha384WithRSA', alg=SHA384_RSA)
        case(i, 'signature algorithms differ', tbs_alg=SHA384_RSA)
        case(i, 'RSA signature without NULL', alg=seq(oid('1.2.840.113549.1.1.11')))
        case(i, 'serial with a leading zero', serial_der=tlv(0x02, b'\x00\x12\x34'))
        case(i, 'negative serial', serial_der=integer(-4660 - i))
        case(i, 'long-form TBS length', long_tbs=True)
        case(i, 'trailing bytes in the certificate', trailing=b'\x05\x00')
        case(i, 'subject like the intermediate',
             subject=name((O, 'ngx_mdm tests'), (CN, 'ngx_mdm Test Device CA'),
                          tag=0x13))
        case(i, 'subject like the intermediate, other case',
             subject=name((O, 'NGX_MDM tests'), (CN, 'ngx_mdm test device ca')))
        case(i, 'non-ASCII subject', subject=name((CN, 'appareil %d é' % i)))
        case(i, 'BMPString subject', subject=seq(der_set(seq(
            oid(CN), tlv(0x1e, ('bmp %d' % i).encode('utf-16-be'))))))
        case(i, 'bad UTF8String subject', subject=seq(der_set(seq(
            oid(CN), tlv(0x0c, b'bad \xc3')))))
        case(i, 'empty subject', subject=seq())
        case(i, 'two-valued RDN', subject=seq(tlv(0x31, seq(oid(CN), tlv(0x0c, b'a'))
                                                  + seq(oid(O), tlv(0x0c, b'b')))))
        case(i, 'v3 without extensions', exts=lambda p, s: None)
        case(i, 'issuerUniqueID', ext_wrap=False, exts=lambda p, s:
             tlv(0x81, b'\x00\x01') + tlv(0xa3, seq(*std_exts(p, s))))

        # the request itself wrong, with a certificate seen for the first time
        emit('tampered body %d' % i, leaf(i, 'tampered body'),
             body_of=b'<plist/>')
        emit('sid names another serial %d' % i, leaf(i, 'sid of another'),
             issuer_serial=(inter.subject, integer(12345)))
        emit('signed by another key %d' % i, leaf(i, 'other key'),
             key=dev_keys[(i + 1) % 4])
        case(i, 'signed long before notBefore', signing_time=now - 86400 - 600)

    # one byte changed at a time in the certificate of good signatures
    for f in range(flips):
        base, body = good_sigs[f % len(good_sigs)]
        start = base.find(b'\xa0\x82', 20) + 4
        der = bytearray(base)
        pos = start + rng.randrange(0, 900)
        der[pos] ^= 1 << rng.randrange(8)
        n[0] += 1
        lines.append({'label': 'flip %d@%d' % (f, pos),
                      'body': body.decode(),
                      'sig': base64.b64encode(bytes(der)).decode()})

    with open(out, 'w') as f:
        for line in lines:
            f.write(json.dumps(line) + '\n')


def fuzz_seeds(pki, body_path, out_dir):
    """Seeds of fuzz/fuzz_fastsig.c's first-sight differential: device
    certificates of every shape above issued by fuzz/pki's CA (valid for
    decades, so the seeds keep their meaning), signed over one body."""
    ca = load_ca(pki + '/ca.pem', pki + '/ca.key')
    key = serialization.load_pem_private_key(
        open(pki + '/rsa.key', 'rb').read(), None)
    pub = key.public_key()
    body = open(body_path, 'rb').read()
    now = int(time.time())
    nb, na = now - 86400, now + 40 * 365 * 86400
    times = seq(utctime(nb), gentime(na))
    std = [bc(), ku(0xa0), eku(CLIENT_AUTH), skid(pub)] \
        + ([akid(ca.kid)] if ca.kid else [])
    variants = [
        ('good', std),
        ('server-auth', [bc(), ku(0xa0), eku(SERVER_AUTH), skid(pub)]),
        ('no-eku', [bc(), ku(0xa0)]),
        ('key-encipherment', [bc(), ku(0x20), eku(CLIENT_AUTH)]),
        ('key-agreement', [bc(), ku(0x08)]),
        ('ca-true', [bc(ca=True), ku(0xa0)]),
        ('unknown-critical', std + [ext('1.2.3.4.5', NULL, critical=True)]),
        ('unknown', std + [ext('1.2.840.113635.100.6.99', NULL)]),
        ('san', std + [ext('2.5.29.17', seq(tlv(0x82, b'device.example'),
                                            tlv(0x87, b'\x7f\x00\x00\x01')))]),
        ('akid-other', [bc(), ku(0xa0), akid(b'\x01' * 20)]),
        ('no-extensions', None),
        ('expired', std),
    ]
    for i, (label, exts) in enumerate(variants):
        t = seq(utctime(now - 400 * 86400), utctime(now - 86400)) \
            if label == 'expired' else times
        sd = integer(0x4000 + i)
        der = cert(ca, name((CN, 'fuzz first sight %s' % label)), pub, exts,
                   0, 0, 0, times=t, serial_der=sd)
        sig = cms(body, der, ca.subject, sd, key, now)
        with open('%s/first-sight-%s' % (out_dir, label), 'wb') as f:
            f.write(len(body).to_bytes(2, 'big') + body + sig)


if __name__ == '__main__':
    if sys.argv[1] == '--fuzz-seeds':
        fuzz_seeds(*sys.argv[2:5])
    else:
        main()
