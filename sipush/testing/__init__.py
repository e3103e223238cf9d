"""Local stand-ins for the push services (APNs, FCM) that speak the real protocols, for tests and
for operators trying sipush out without Apple's or Google's servers."""
