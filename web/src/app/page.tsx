'use client';
// `/`: restore the session from the refresh cookie, then go to the app or to sign-in.
import { useEffect } from 'react';
import { useRouter } from 'next/navigation';
import { restoreSession } from '@/lib/auth';

export default function Home() {
  const router = useRouter();
  useEffect(() => {
    let live = true;
    void restoreSession().then((ok) => {
      if (live) router.replace(ok ? '/app' : '/login');
    });
    return () => {
      live = false;
    };
  }, [router]);
  return (
    <main className="splash" aria-busy="true">
      <p>Loading Hearth…</p>
    </main>
  );
}
