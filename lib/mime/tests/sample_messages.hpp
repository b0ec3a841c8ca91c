// Messages the MIME parser's tests and IMAP's structure tests share.
#pragma once

#include <string>

namespace tern::mime::samples {

inline const std::string kPlain =
    "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    "From: \"Doe, John\" <john.doe@example.com>\r\n"
    "to: alice@example.org, Bob Smith <bob@example.net>,\r\n"
    " friends: carol@example.com, \"Dave\" <dave@example.com>;\r\n"
    "CC: undisclosed-recipients:;\r\n"
    "Subject: Hello\r\n"
    " world\r\n"
    "Message-ID: <1234@example.com>\r\n"
    "\r\n"
    "Line one\r\n"
    "Line two\r\n";

inline const std::string kAlternative =
    "From: a@example.com\r\n"
    "Subject: alt\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hi\r\n"
    "--b1\r\n"
    "Content-Type: text/html; charset=\"utf-8\"\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>Hi</p>\r\n"
    "--b1--\r\n"
    "epilogue\r\n";

inline const std::string kMixed =
    "From: sender@example.com\r\n"
    "Content-Type: multipart/mixed; boundary=outer\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "\r\n"
    "plain\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<b>html</b>\r\n"
    "--inner--\r\n"
    "--outer \r\n"
    "Content-Type: application/pdf; name=\"report, final.pdf\"\r\n"
    "Content-Disposition: attachment;\r\n"
    " filename=\"report, final.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-ID: <pdf1@x>\r\n"
    "Content-Description: The report\r\n"
    "Content-Language: en, de\r\n"
    "\r\n"
    "JVBERi0=\r\n"
    "--outer--\r\n";

inline const std::string kForward =
    "From: x@example.com\r\n"
    "Content-Type: multipart/mixed; boundary=m\r\n"
    "\r\n"
    "--m\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "See attached.\r\n"
    "--m\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "From: inner@example.com\r\n"
    "Subject: inner\r\n"
    "\r\n"
    "Inner body\r\n"
    "--m--\r\n";

inline std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace tern::mime::samples
